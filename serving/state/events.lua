-- A batch of offer events, recorded atomically. The keys are those of
-- perkrank/serving/state/keys.py, built by the caller (RedisStateStore.record_events).
--
-- ARGV: stream_key, stream_length, id_ttl_seconds, event_count, then for each event:
--       id_key ('' when the event has no event_id), redeemed_key ('' unless a redemption),
--       counter_count, counter_count x (key, hash field ('' for a plain counter),
--       ttl_seconds (0: never expires)), entry_length, entry_length values (the stream
--       entry's field, value pairs).
-- Returns {accepted, duplicates}.
--
-- An event whose id key already exists is a duplicate and changes nothing; any other event
-- adds 1 to each of its counters (and to redeemed) and is appended to the stream.

local stream_key, stream_length, id_ttl = ARGV[1], ARGV[2], ARGV[3]
local accepted, duplicates, at = 0, 0, 5

for _ = 1, tonumber(ARGV[4]) do
  local id_key, redeemed_key = ARGV[at], ARGV[at + 1]
  local counter_count = tonumber(ARGV[at + 2])
  local counters_at = at + 3
  local entry_at = counters_at + 3 * counter_count + 1
  local entry_length = tonumber(ARGV[entry_at - 1])
  at = entry_at + entry_length
  if id_key ~= '' and not redis.call('SET', id_key, '1', 'NX', 'EX', id_ttl) then
    duplicates = duplicates + 1
  else
    accepted = accepted + 1
    for c = counters_at, entry_at - 2, 3 do
      local key, field, ttl = ARGV[c], ARGV[c + 1], tonumber(ARGV[c + 2])
      if field == '' then
        if redis.call('INCR', key) == 1 and ttl > 0 then
          redis.call('EXPIRE', key, ttl)
        end
      else
        redis.call('HINCRBY', key, field, 1)
        if ttl > 0 then
          redis.call('EXPIRE', key, ttl)
        end
      end
    end
    if redeemed_key ~= '' then
      redis.call('INCR', redeemed_key)
    end
    redis.call('XADD', stream_key, 'MAXLEN', '~', stream_length, '*',
               unpack(ARGV, entry_at, at - 1))
  end
end
return { accepted, duplicates }
