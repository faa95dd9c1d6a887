-- One member's offers for one request, chosen and counted atomically. The keys are those of
-- perkrank/serving/keys.py, built here (no KEYS); the caller is RedisStateStore.select.
--
-- ARGV: prefix, member_id, channel, limit, max_per_partner, rule_count,
--       rule_count x (name, scope, limit, counts_served 1|0, bucket, ttl_seconds 0=never),
--       personalized_count, personalized candidates, fallback_count, fallback candidates.
-- Candidates are one string per list: records separated by \30, each record is
-- offer_id \31 partner_id \31 category \31 budget (empty: no budget).
-- Returns {personalized 1|0, opt_out, partner_limit, budget, cap, chosen positions (0-based)}.
--
-- Candidates are parsed and their counters read in chunks, as far as the walk gets (first as
-- many as are still wanted, then doubling): one HMGET or MGET per rule and one MGET for budgets
-- per chunk. Every read happens before the first write, so a failing read leaves no partial
-- counts.

local CANDIDATE = '^([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\30?()'
local ESCAPES = { ['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D' }

local function key_part(value)
  if string.find(value, '[%%{}]') then
    return (string.gsub(value, '[%%{}]', ESCAPES))
  end
  return value
end

local prefix, member_id, channel = ARGV[1], ARGV[2], ARGV[3]
local limit, max_per_partner = tonumber(ARGV[4]), tonumber(ARGV[5])
local member_tag = prefix .. ':{m:' .. key_part(member_id) .. '}'

local function offer_key(offer_id, suffix)
  return prefix .. ':{o:' .. key_part(offer_id) .. '}' .. suffix
end

local preferences = {}
local fields = redis.call('HGETALL', member_tag .. ':prefs')
for i = 1, #fields, 2 do
  preferences[fields[i]] = fields[i + 1]
end
local personalized = preferences['personalization'] ~= '0'

-- A member-scoped rule's counters are the fields of one hash (rule.key); an offer_total rule
-- keeps one key per offer (offer_key(offer_id, rule.suffix)). Counts are by scope value.
local rules, at = {}, 7
for r = 1, tonumber(ARGV[6]) do
  local name, scope, bucket = ARGV[at], ARGV[at + 1], ARGV[at + 4]
  local rule = { scope = scope, limit = tonumber(ARGV[at + 2]), served = ARGV[at + 3] == '1',
                 ttl = tonumber(ARGV[at + 5]), counts = {}, counts_read = {} }
  if scope == 'offer_total' then
    rule.suffix = ':cap:' .. name .. ':' .. bucket
  else
    rule.key = member_tag .. ':cap:' .. name .. ':' .. bucket
  end
  rules[r] = rule
  at = at + 6
end
-- Which rule rules a candidate out does not matter (the reason is "cap" either way), so rules
-- with fewer counters to read are checked first.
local READ_ORDER = { member_channel = 1, member_partner = 2, member_offer = 3, offer_total = 4 }
table.sort(rules, function(left, right)
  return READ_ORDER[left.scope] < READ_ORDER[right.scope]
end)

local function scope_value(rule, candidate)
  if rule.scope == 'member_partner' then
    return candidate.partner_id
  elseif rule.scope == 'member_channel' then
    return channel
  end
  return candidate.offer_id
end

local count, text = tonumber(ARGV[at]), ARGV[at + 1]
if not personalized then
  count, text = tonumber(ARGV[at + 2]), ARGV[at + 3]
end

local result = { personalized and 1 or 0, 0, 0, 0, 0 }
if preferences['opt_out_all'] == '1' or preferences['channel:' .. channel] then
  result[2] = count
  return result
end

local candidates, from, redeemed = {}, 1, {}

local function opted_out(candidate)
  return preferences['category:' .. candidate.category]
    or preferences['partner:' .. candidate.partner_id]
end

local function over_budget(candidate)
  return candidate.budget and redeemed[candidate.offer_id] >= candidate.budget
end

local function capped_by(rule, candidate)
  return rule.counts[scope_value(rule, candidate)] >= rule.limit
end

local function capped(candidate)
  for _, rule in ipairs(rules) do
    if capped_by(rule, candidate) then
      return true
    end
  end
  return false
end

local function keep(list, wanted)
  local kept = {}
  for _, item in ipairs(list) do
    if wanted(item) then
      kept[#kept + 1] = item
    end
  end
  return kept
end

-- Reads into `counts` and `counts_read` the counts of `values` not read yet, via `read(values)`.
local function read_counts(values, counts, counts_read, read)
  local wanted = keep(values, function(value) return counts[value] == nil end)
  if #wanted > 0 then
    local replies = read(wanted)
    for i, value in ipairs(wanted) do
      counts[value] = tonumber(replies[i]) or 0
      counts_read[value] = counts[value]
    end
  end
end

local function read_offer_counters(offer_ids, suffix)
  local keys = {}
  for i, offer_id in ipairs(offer_ids) do
    keys[i] = offer_key(offer_id, suffix)
  end
  return redis.call('MGET', unpack(keys))
end

-- Parses the next `size` candidates and reads the counters the walk will check for them: the
-- budget, then each rule in turn, dropping a candidate from later reads as soon as what is read
-- rules it out (counts only grow during the walk, so the walk stops at that check too).
local function load(size)
  local parsed = {}
  for position = #candidates + 1, math.min(#candidates + size, count) do
    local offer_id, partner_id, category, budget, next_from = string.match(text, CANDIDATE, from)
    local candidate = { offer_id = offer_id, partner_id = partner_id, category = category,
                        budget = tonumber(budget) }
    candidates[position] = candidate
    parsed[#parsed + 1] = candidate
    from = next_from
  end
  local alive = keep(parsed, function(candidate) return not opted_out(candidate) end)
  local budgeted = {}
  for _, candidate in ipairs(alive) do
    if candidate.budget then
      budgeted[#budgeted + 1] = candidate.offer_id
    end
  end
  read_counts(budgeted, redeemed, {}, function(offer_ids)
    return read_offer_counters(offer_ids, ':redeemed')
  end)
  alive = keep(alive, function(candidate) return not over_budget(candidate) end)
  for _, rule in ipairs(rules) do
    local values = {}
    for i, candidate in ipairs(alive) do
      values[i] = scope_value(rule, candidate)
    end
    read_counts(values, rule.counts, rule.counts_read, function(wanted)
      if rule.key then
        return redis.call('HMGET', rule.key, unpack(wanted))
      end
      return read_offer_counters(wanted, rule.suffix)
    end)
    alive = keep(alive, function(candidate) return not capped_by(rule, candidate) end)
  end
end

local chosen, taken_by_partner, position = 0, {}, 0
while chosen < limit and position < count do
  position = position + 1
  if position > #candidates then
    load(math.max(limit - chosen, #candidates))
  end
  local candidate = candidates[position]
  local taken = taken_by_partner[candidate.partner_id] or 0
  if opted_out(candidate) then
    result[2] = result[2] + 1
  elseif taken >= max_per_partner then
    result[3] = result[3] + 1
  elseif over_budget(candidate) then
    result[4] = result[4] + 1
  elseif capped(candidate) then
    result[5] = result[5] + 1
  else
    chosen = chosen + 1
    result[5 + chosen] = position - 1
    taken_by_partner[candidate.partner_id] = taken + 1
    for _, rule in ipairs(rules) do
      if rule.served then
        local value = scope_value(rule, candidate)
        rule.counts[value] = rule.counts[value] + 1
      end
    end
  end
end

-- Write the new counts. A member rule's hash gets the window's expiry on every write; an
-- offer counter gets it when this call creates it and keeps it otherwise.
for _, rule in ipairs(rules) do
  if rule.served then
    local changed = {}
    for value, counted in pairs(rule.counts) do
      if counted ~= rule.counts_read[value] then
        changed[#changed + 1] = value
        changed[#changed + 1] = counted
      end
    end
    if #changed > 0 and rule.key then
      redis.call('HSET', rule.key, unpack(changed))
      if rule.ttl > 0 then
        redis.call('EXPIRE', rule.key, rule.ttl)
      end
    elseif #changed > 0 then
      for i = 1, #changed, 2 do
        local key = offer_key(changed[i], rule.suffix)
        if rule.counts_read[changed[i]] > 0 then
          redis.call('SET', key, changed[i + 1], 'KEEPTTL')
        elseif rule.ttl > 0 then
          redis.call('SET', key, changed[i + 1], 'EX', rule.ttl)
        else
          redis.call('SET', key, changed[i + 1])
        end
      end
    end
  end
end
return result
