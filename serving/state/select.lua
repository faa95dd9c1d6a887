-- One member's offers for one request, chosen and counted atomically. The keys are those of
-- perkrank/serving/state/keys.py, built here (no KEYS); the caller is RedisStateStore.select.
--
-- This script is the translation of the pure function select_offers in
-- serving/domain/rules.py, which states the policy (MemoryStateStore calls it directly). Each
-- step below names the function of rules.py it translates; change both together.
-- tests/serving/state/test_rules_agreement.py checks that they, and the memory store, agree.
-- What only this script does: read the MemberState it needs from Redis (lazily, below) and
-- write the increments (Choice.increments) back.
--
-- ARGV: prefix, member_id, channel, limit, max_per_partner, rules,
--       personalized_count, personalized candidates, fallback_count, fallback candidates,
--       sensitive categories (one string, separated by \30), decision_id (empty: none),
--       decision_ttl_seconds,
--       on Redis Cluster only (else empty): offer-wide state, records separated by \30, each
--       offer_id \31 redeemed \31 room (how often this walk may choose it),
--       local_slots (SelectionRequest.local_slots: the local floor; 0: none).
-- ARGV 1-6: prefix .. rules; 7-10: the candidate lists; 11 sensitive; 12 decision_id;
-- 13 decision ttl; 14 Cluster offer-state; 15 local_slots. New arguments go at the end.
-- On Cluster (ARGV[14] not empty) each offer's own slot has read its budget's redemptions and
-- reserved `room` under its offer_total rules (RedisClusterStateStore.select): this script
-- touches only member keys.
-- Rules are one string: rules separated by \30, each rule is
-- name \31 scope \31 limit \31 counts_served (1|0) \31 bucket \31 ttl_seconds (0: never).
-- Candidates are one string per list: records separated by \30, each record is
-- offer_id \31 partner_id \31 category \31 budget (empty: no budget) \31 local (1 or empty).
-- Returns {personalized 1|0, purchase_reasons 1|0, opt_out, sensitive, partner_limit, budget,
--          cap, chosen positions (0-based)}.
--
-- The walk reads counters in chunks of candidates, as far as it gets (first three times as many
-- as wanted, then doubling): one HMGET per member-scoped rule, one MGET for offer counters and
-- budgets per chunk. Every read happens before the first write, so a failing read leaves no
-- partial counts. Candidates live in parallel arrays (no table per candidate): this script
-- runs on every request.

local CANDIDATE = '^([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\30?()'
local RULE = '([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)'
local ESCAPES = { ['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D' }

local function key_part(value)
  if string.find(value, '[%%{}]') then
    return (string.gsub(value, '[%%{}]', ESCAPES))
  end
  return value
end

local prefix, member_id, channel = ARGV[1], ARGV[2], ARGV[3]
local limit, max_per_partner = tonumber(ARGV[4]), tonumber(ARGV[5])
local cluster_state = ARGV[14] ~= '' and ARGV[14] or nil
local local_slots = math.min(tonumber(ARGV[15]), limit)
local member_tag = prefix .. ':{m:' .. key_part(member_id) .. '}'

local function offer_key(offer_id, suffix)
  return prefix .. ':{o:' .. key_part(offer_id) .. '}' .. suffix
end

-- MemberState.preferences: opt-outs by kind, looked up by value during the walk.
local opt_out_all, personalized, opted_out_channel = false, true, false
local opted_out_categories, opted_out_partners, consents = {}, {}, {}
local purchase_reasons = true
local fields = redis.call('HGETALL', member_tag .. ':prefs')
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if field == 'opt_out_all' then
    opt_out_all = value == '1'
  elseif field == 'personalization' then
    personalized = value ~= '0'
  elseif field == 'purchase_reasons' then
    purchase_reasons = value ~= '0'
  else
    local kind, id = string.match(field, '^(%a+):(.*)$')
    if kind == 'category' then
      opted_out_categories[id] = true
    elseif kind == 'partner' then
      opted_out_partners[id] = true
    elseif kind == 'channel' and id == channel then
      opted_out_channel = true
    elseif kind == 'consent' then
      consents[id] = true
    end
  end
end

-- select_offers: the personalized order unless the member turned personalization off.
local count, text = tonumber(ARGV[7]), ARGV[8]
if not personalized then
  count, text = tonumber(ARGV[9]), ARGV[10]
end
-- MemberState.reshown: the decision was shown to the member before (on any channel).
local shown_key = ARGV[12] ~= '' and member_tag .. ':shown:' .. key_part(ARGV[12]) or nil
local reshown = shown_key ~= nil and redis.call('EXISTS', shown_key) == 1
local result = { personalized and 1 or 0, purchase_reasons and 1 or 0, 0, 0, 0, 0, 0 }
-- _blanket_opt_out: opted out of everything or of this channel: every candidate is opt_out.
if opt_out_all or opted_out_channel then
  result[3] = count
  return result
end

-- select_offers' `guarded`: walking the personalized order, the sensitive categories the
-- member did not consent to.
local guarded = {}
if personalized then
  for category in string.gmatch(ARGV[11], '[^\30]+') do
    if not consents[category] then
      guarded[category] = true
    end
  end
end

-- Rules as _Cap.of makes them (RedisStateStore._rules_text computes each bucket and ttl) and
-- their counters (MemberState.cap_counts). `counts[value]` is the count by scope value (offer,
-- partner or channel id) as the walk goes; `read[value]` what the store held. A member-scoped
-- rule's counters are the fields of one hash (rule.key); an offer_total rule keeps one key per
-- offer (offer_key(id, rule.suffix)).
local rules, channel_rules = {}, {}
for name, scope, rule_limit, served, bucket, ttl in string.gmatch(ARGV[6], RULE) do
  local rule = { scope = scope, limit = tonumber(rule_limit), served = served == '1',
                 ttl = tonumber(ttl), counts = {}, read = {} }
  if scope == 'offer_total' then
    rule.suffix = ':cap:' .. name .. ':' .. bucket
  else
    rule.key = member_tag .. ':cap:' .. name .. ':' .. bucket
  end
  if not (cluster_state and scope == 'offer_total') then
    rules[#rules + 1] = rule
  end
  if scope == 'member_channel' then
    local counted = tonumber(redis.call('HGET', rule.key, channel)) or 0
    rule.counts[channel], rule.read[channel] = counted, counted
    channel_rules[#channel_rules + 1] = rule
  end
end
-- select_offers' `caps`: a re-shown decision skips the rules counting `served`.
if reshown then
  local kept = {}
  for _, rule in ipairs(rules) do
    if not rule.served then
      kept[#kept + 1] = rule
    end
  end
  rules = kept
end

-- Candidates, parsed and read chunk by chunk.
local offer_ids, partner_ids, categories, budgets, locals = {}, {}, {}, {}, {}
local redeemed, parsed, from = {}, 0, 1

-- On Cluster: MemberState.redeemed as the offers' slots read it, and each offer's room under
-- its offer_total rules (which then are not read or written here).
local rooms, chosen_offers = nil, {}
if cluster_state then
  rooms = {}
  local record = '([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)'
  for offer_id, spent, room in string.gmatch(cluster_state, record) do
    redeemed[offer_id], rooms[offer_id] = tonumber(spent), tonumber(room)
  end
end

-- scope_value: each rule counts by the values of one array (rule.values[position]), or by
-- the channel.
for _, rule in ipairs(rules) do
  if rule.scope == 'member_partner' then
    rule.values = partner_ids
  elseif rule.scope ~= 'member_channel' then
    rule.values = offer_ids
  end
end

local function scope_value(rule, position)
  local values = rule.values
  if values then
    return values[position]
  end
  return channel
end

-- Stores `replies` as the counts of `values` not known yet.
local function remember(counts, read, values, replies)
  for i, value in ipairs(values) do
    if counts[value] == nil then
      local counted = tonumber(replies[i]) or 0
      counts[value], read[value] = counted, counted
    end
  end
end

-- Reads MemberState.redeemed and MemberState.cap_counts for the next `size` candidates.
local function load(size)
  local first = parsed + 1
  parsed = math.min(parsed + size, count)
  local budgeted, budget_keys = {}, {}
  for position = first, parsed do
    local offer_id, partner_id, category, budget, is_local, next_from =
      string.match(text, CANDIDATE, from)
    offer_ids[position], partner_ids[position], categories[position] = offer_id, partner_id, category
    locals[position] = is_local == '1'
    budgets[position] = tonumber(budget)
    if budgets[position] and redeemed[offer_id] == nil then
      budgeted[#budgeted + 1] = offer_id
      budget_keys[#budget_keys + 1] = offer_key(offer_id, ':redeemed')
    end
    from = next_from
  end
  if #budget_keys > 0 then
    remember(redeemed, {}, budgeted, redis.call('MGET', unpack(budget_keys)))
  end
  for _, rule in ipairs(rules) do
    if rule.scope ~= 'member_channel' then
      local values, keys = {}, {}
      for position = first, parsed do
        local value = scope_value(rule, position)
        if rule.counts[value] == nil then
          values[#values + 1] = value
          if rule.suffix then
            keys[#keys + 1] = offer_key(value, rule.suffix)
          end
        end
      end
      if #values > 0 then
        local replies
        if rule.key then
          replies = redis.call('HMGET', rule.key, unpack(values))
        else
          replies = redis.call('MGET', unpack(keys))
        end
        remember(rule.counts, rule.read, values, replies)
      end
    end
  end
end

-- _capped: a rule's count (stored + chosen in this walk) is at its limit (first rule wins).
local function capped(position)
  local offer_id = offer_ids[position]
  if rooms and rooms[offer_id] and (chosen_offers[offer_id] or 0) >= rooms[offer_id] then
    return true
  end
  for _, rule in ipairs(rules) do
    local values = rule.values
    if rule.counts[values and values[position] or channel] >= rule.limit then
      return true
    end
  end
  return false
end

-- select_offers' `broken`: the first rule the candidate breaks, as its index in `result`
-- (SUPPRESSION_REASONS order), or nil.
local taken_by_partner = {}
local function broken(position)
  local partner_id = partner_ids[position]
  if opted_out_categories[categories[position]] or opted_out_partners[partner_id] then
    return 3 -- _opt_out
  elseif guarded[categories[position]] then
    return 4 -- _unconsented
  elseif (taken_by_partner[partner_id] or 0) >= max_per_partner then
    return 5 -- _partner_limit
  elseif budgets[position] and redeemed[offer_ids[position]] >= budgets[position] then
    return 6 -- _budget_spent
  elseif capped(position) then
    return 7 -- _capped
  end
  return nil
end

-- select_offers' `choose`: the partner's count, the offer's (on Cluster) and _count_served:
-- 1 more on its counter of every rule counting `served`.
local chosen, is_chosen = 0, {}
local function choose(position)
  chosen = chosen + 1
  is_chosen[position] = true
  local partner_id, offer_id = partner_ids[position], offer_ids[position]
  taken_by_partner[partner_id] = (taken_by_partner[partner_id] or 0) + 1
  chosen_offers[offer_id] = (chosen_offers[offer_id] or 0) + 1
  for _, rule in ipairs(rules) do
    if rule.served then
      local value = scope_value(rule, position)
      rule.counts[value] = rule.counts[value] + 1
    end
  end
end

-- select_offers: the local floor's walk takes local candidates until `local_slots` are chosen.
local position = 0
while chosen < local_slots and position < count do
  position = position + 1
  if position > parsed then
    load(math.max(3 * (local_slots - chosen), parsed))
  end
  if locals[position] and broken(position) == nil then
    choose(position)
  end
end

-- select_offers: the walk, best first, until `limit` are chosen (the rest: `limit`, not
-- counted). A candidate is left out by the first rule it breaks, in SUPPRESSION_REASONS order.
position = 0
while chosen < limit and position < count do
  position = position + 1
  if position > parsed then
    load(math.max(3 * (limit - chosen), parsed))
  end
  if not is_chosen[position] then
    local why = broken(position)
    if why then
      result[why] = result[why] + 1
    else
      choose(position)
    end
  end
end
-- Choice.positions: the chosen positions (0-based), in order.
for walked = 1, parsed do
  if is_chosen[walked] then
    result[#result + 1] = walked - 1
  end
end

-- Apply Choice.increments: write the new counts. A member rule's hash gets the window's expiry
-- on every write; an offer counter gets it when this call creates it and keeps it otherwise.
for _, rule in ipairs(rules) do
  if rule.served then
    local changed = {}
    for value, counted in pairs(rule.counts) do
      if counted ~= rule.read[value] then
        changed[#changed + 1] = value
        changed[#changed + 1] = counted
      end
    end
    if #changed > 0 and rule.key then
      redis.call('HSET', rule.key, unpack(changed))
      if rule.ttl > 0 then
        redis.call('EXPIRE', rule.key, rule.ttl)
      end
    else
      for i = 1, #changed, 2 do
        local key = offer_key(changed[i], rule.suffix)
        if rule.read[changed[i]] > 0 then
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
-- Choice.remember_decision: a new decision is remembered as shown.
if shown_key and not reshown then
  redis.call('SET', shown_key, 1, 'EX', tonumber(ARGV[13]))
end
return result
