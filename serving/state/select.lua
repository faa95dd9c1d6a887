-- The offers of one or more members, each chosen and counted atomically as if alone, in order.
-- The keys are those of perkrank/serving/state/keys.py, built here (no KEYS); the caller is
-- RedisStateStore.select (one member) or select_many (a campaign's members, many per call).
--
-- This script is the translation of the pure function select_offers in
-- serving/domain/rules.py, which states the policy (MemoryStateStore calls it directly). Each
-- step below names the function of rules.py it translates; change both together.
-- tests/serving/state/test_rules_agreement.py checks that they, and the memory store, agree.
-- What only this script does: read the MemberState it needs from Redis (lazily, below) and
-- write the increments (Choice.increments) back.
--
-- ARGV: prefix, the number of offer records R, R offer records, then 9 per member:
--   member_id, decision_id (empty: none), numbers, channel, rules, sensitive,
--   personalized, fallback, cluster offer-state.
-- An offer record is offer_id \31 partner_id \31 category \31 budget (empty: no budget)
-- \31 local (1 or empty): Candidate.record. A candidate list is the 1-based numbers of its
-- records, separated by commas; a fallback of `=` is the previous member's fallback.
-- numbers: limit,max_per_partner,local_slots,decision_ttl_seconds (local_slots:
-- SelectionRequest.local_slots, the local floor; 0: none).
-- Rules are one string: rules separated by \30, each rule is
-- name \31 scope \31 limit \31 counts_served (1|0) \31 bucket \31 ttl_seconds (0: never).
-- Sensitive categories are one string, separated by \30.
-- Cluster offer-state (on Redis Cluster only, else empty): records separated by \30, each
-- offer_id \31 redeemed \31 room (how often this walk may choose it). On Cluster each
-- offer's own slot has read its budget's redemptions and reserved `room` under its
-- offer_total rules (RedisClusterStateStore.select), and a call holds one member: this script
-- touches only member keys.
-- Returns one reply per member: {personalized 1|0, purchase_reasons 1|0, opt_out, sensitive,
-- partner_limit, budget, cap, chosen positions (0-based)}.
--
-- Offer-wide state is read once per call: an offer's redemptions and its offer_total
-- counters are read when a member's walk first needs them, kept for the next members and
-- written once, after the last member (nothing else runs while the script does, so the
-- members see each other's counts as if they had called one by one). A member's own keys are
-- read and written by that member's step: a member-scoped rule's hash is read whole (HGETALL),
-- offer counters and budgets in chunks of candidates, as far as the walk gets (first three
-- times as many as wanted, then doubling; one MGET per offer_total rule and one for budgets
-- per chunk, of what the call has not read yet). Every read of a member happens before its
-- first write; when a member's step fails, the offer-wide counts of the members before it
-- are written and the error is the reply.

local RECORD = '^([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)$'
local RULE = '([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)\31([^\30\31]*)'
local ESCAPES = { ['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D' }
local MEMBER_ARGS = 9

local function key_part(value)
  if string.find(value, '[%%{}]') then
    return (string.gsub(value, '[%%{}]', ESCAPES))
  end
  return value
end

local prefix = ARGV[1]
local record_count = tonumber(ARGV[2])

local function offer_key(offer_id, suffix)
  return prefix .. ':{o:' .. key_part(offer_id) .. '}' .. suffix
end

-- The offer records, parsed on first use: fields by record number.
local record_offer, record_partner, record_category, record_budget, record_local = {}, {}, {}, {}, {}
local function parse_record(number)
  local offer_id, partner_id, category, budget, is_local = string.match(ARGV[2 + number], RECORD)
  record_offer[number], record_partner[number], record_category[number] = offer_id, partner_id, category
  record_budget[number], record_local[number] = tonumber(budget), is_local == '1'
end

-- Offer-wide state of this call (one server): MemberState.redeemed by offer id, and per
-- offer_total rule and bucket (`suffix`) the counts as the walks go, what the store held and
-- the expiry of counters this call creates.
local redeemed_of_call = {}
local wide, wide_order = {}, {}
local function wide_state(suffix, ttl)
  local state = wide[suffix]
  if state == nil then
    state = { suffix = suffix, counts = {}, read = {}, ttl = {} }
    wide[suffix] = state
    wide_order[#wide_order + 1] = state
  end
  return state
end

-- Rules as _Cap.of makes them (RedisStateStore._rules_text computes each bucket and ttl),
-- parsed once per distinct rules string.
local parsed_rules_text, rule_specs = nil, nil
local function specs_of(text)
  if text ~= parsed_rules_text then
    rule_specs = {}
    for name, scope, rule_limit, served, bucket, ttl in string.gmatch(text, RULE) do
      rule_specs[#rule_specs + 1] = { name = name, scope = scope, limit = tonumber(rule_limit),
                                      served = served == '1', bucket = bucket, ttl = tonumber(ttl) }
    end
    parsed_rules_text = text
  end
  return rule_specs
end

local previous_fallback = ''
-- The offer counts the current member's walk added (counts table, value), taken back when
-- its step fails.
local added_by_member = {}

-- One member's selection (ARGV[base + 1 .. base + MEMBER_ARGS]): its reply.
local function select_member(base)
  local member_id, decision_id, numbers = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local channel, rules_text, sensitive = ARGV[base + 4], ARGV[base + 5], ARGV[base + 6]
  local personalized_text, fallback_text = ARGV[base + 7], ARGV[base + 8]
  local cluster_state = ARGV[base + 9] ~= '' and ARGV[base + 9] or nil
  if fallback_text == '=' then
    fallback_text = previous_fallback
  end
  previous_fallback = fallback_text
  local limit, max_per_partner, local_slots, decision_ttl =
    string.match(numbers, '^(%d+),(%d+),(%d+),(%d+)$')
  limit, max_per_partner = tonumber(limit), tonumber(max_per_partner)
  local_slots = math.min(tonumber(local_slots), limit)
  local member_tag = prefix .. ':{m:' .. key_part(member_id) .. '}'

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
  local text = personalized and personalized_text or fallback_text
  local numbers_of = {}
  for number in string.gmatch(text, '%d+') do
    numbers_of[#numbers_of + 1] = tonumber(number)
  end
  local count = #numbers_of
  -- MemberState.reshown: the decision was shown to the member before (on any channel).
  local shown_key = decision_id ~= '' and member_tag .. ':shown:' .. key_part(decision_id) or nil
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
    for category in string.gmatch(sensitive, '[^\30]+') do
      if not consents[category] then
        guarded[category] = true
      end
    end
  end

  -- The rules and their counters (MemberState.cap_counts). `counts[value]` is the count by
  -- scope value (offer, partner or channel id) as the walk goes; `read[value]` what the store
  -- held. A member-scoped rule's counters are the fields of one hash (rule.key), read whole
  -- (a missing field: 0), its changed values kept in `changed`; an offer_total rule keeps one
  -- key per offer (offer_key(id, rule.suffix)), read as the walk needs it, its counts shared
  -- by the call's members (`wide`).
  local rules, offer_rules = {}, {}
  for _, spec in ipairs(specs_of(rules_text)) do
    local rule = { scope = spec.scope, limit = spec.limit, served = spec.served, ttl = spec.ttl }
    if spec.scope == 'offer_total' then
      rule.suffix = ':cap:' .. spec.name .. ':' .. spec.bucket
      if not cluster_state then
        local state = wide_state(rule.suffix)
        rule.counts, rule.read, rule.ttls = state.counts, state.read, state.ttl
      end
    else
      rule.key = member_tag .. ':cap:' .. spec.name .. ':' .. spec.bucket
      local counts, read = {}, {}
      local stored = redis.call('HGETALL', rule.key)
      for i = 1, #stored, 2 do
        local counted = tonumber(stored[i + 1])
        counts[stored[i]], read[stored[i]] = counted, counted
      end
      rule.counts, rule.read, rule.changed = counts, read, {}
    end
    if not (cluster_state and spec.scope == 'offer_total') then
      rules[#rules + 1] = rule
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
  for _, rule in ipairs(rules) do
    if rule.suffix then
      offer_rules[#offer_rules + 1] = rule
    end
  end

  -- Candidates, in parallel arrays (no table per candidate), filled in chunk by chunk.
  local offer_ids, partner_ids, categories, budgets, locals = {}, {}, {}, {}, {}
  local parsed = 0

  -- MemberState.redeemed (read once per call); on Cluster as the offers' slots read it, with
  -- each offer's room under its offer_total rules (which then are not read or written here).
  local redeemed, rooms, chosen_offers = redeemed_of_call, nil, {}
  if cluster_state then
    redeemed, rooms = {}, {}
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

  -- Reads MemberState.redeemed and the offer_total counts for the next `size` candidates
  -- (what this call has not read yet).
  local function load(size)
    local first = parsed + 1
    parsed = math.min(parsed + size, count)
    local budgeted, budget_keys = {}, {}
    for position = first, parsed do
      local number = numbers_of[position]
      if record_offer[number] == nil then
        parse_record(number)
      end
      local offer_id = record_offer[number]
      offer_ids[position], partner_ids[position] = offer_id, record_partner[number]
      categories[position], locals[position] = record_category[number], record_local[number]
      budgets[position] = record_budget[number]
      if budgets[position] and redeemed[offer_id] == nil then
        budgeted[#budgeted + 1] = offer_id
        budget_keys[#budget_keys + 1] = offer_key(offer_id, ':redeemed')
      end
    end
    if #budget_keys > 0 then
      remember(redeemed, {}, budgeted, redis.call('MGET', unpack(budget_keys)))
    end
    for _, rule in ipairs(offer_rules) do
      local counts, values, keys, asked = rule.counts, {}, {}, {}
      for position = first, parsed do
        local value = offer_ids[position]
        if counts[value] == nil and not asked[value] then
          asked[value] = true
          values[#values + 1] = value
          keys[#keys + 1] = offer_key(value, rule.suffix)
        end
      end
      if #values > 0 then
        remember(counts, rule.read, values, redis.call('MGET', unpack(keys)))
      end
    end
  end

  -- _capped: a rule's count (stored + chosen in this walk) is at its limit (first rule wins).
  local function capped(position)
    local offer_id = offer_ids[position]
    if rooms and rooms[offer_id] and (chosen_offers[offer_id] or 0) >= rooms[offer_id] then
      return true
    end
    for i = 1, #rules do
      local rule = rules[i]
      local values = rule.values
      if (rule.counts[values and values[position] or channel] or 0) >= rule.limit then
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
  -- 1 more on its counter of every rule counting `served` (an offer counter this call
  -- creates keeps the expiry of the member who first counted it).
  local chosen, is_chosen = 0, {}
  local function choose(position)
    chosen = chosen + 1
    is_chosen[position] = true
    local partner_id, offer_id = partner_ids[position], offer_ids[position]
    taken_by_partner[partner_id] = (taken_by_partner[partner_id] or 0) + 1
    chosen_offers[offer_id] = (chosen_offers[offer_id] or 0) + 1
    for i = 1, #rules do
      local rule = rules[i]
      if rule.served then
        local value = scope_value(rule, position)
        if rule.ttls then
          if rule.ttls[value] == nil then
            rule.ttls[value] = rule.ttl
          end
          added_by_member[#added_by_member + 1] = rule.counts
          added_by_member[#added_by_member + 1] = value
        elseif rule.changed then
          rule.changed[value] = true
        end
        rule.counts[value] = (rule.counts[value] or 0) + 1
      end
    end
  end

  -- select_offers: the local floor's walk takes local candidates until `local_slots` are
  -- chosen.
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
  -- counted). A candidate is left out by the first rule it breaks, in SUPPRESSION_REASONS
  -- order.
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

  -- Apply Choice.increments of the member's keys: a member rule's hash gets the window's
  -- expiry on every write (offer counters: after the last member, `write_offer_counts`).
  for _, rule in ipairs(rules) do
    if rule.served and rule.key then
      local changed = {}
      for value in pairs(rule.changed) do
        changed[#changed + 1] = value
        changed[#changed + 1] = rule.counts[value]
      end
      if #changed > 0 then
        redis.call('HSET', rule.key, unpack(changed))
        if rule.ttl > 0 then
          redis.call('EXPIRE', rule.key, rule.ttl)
        end
      end
    end
  end
  -- Choice.remember_decision: a new decision is remembered as shown.
  if shown_key and not reshown then
    redis.call('SET', shown_key, 1, 'EX', tonumber(decision_ttl))
  end
  return result
end

-- Apply Choice.increments of offer counters: each counter once, with its new count. One
-- this call creates gets the window's expiry; one that existed keeps its own.
local function write_offer_counts()
  for _, state in ipairs(wide_order) do
    for value, counted in pairs(state.counts) do
      local before = state.read[value]
      if counted ~= before then
        local key = offer_key(value, state.suffix)
        local ttl = state.ttl[value]
        if before > 0 then
          redis.call('SET', key, counted, 'KEEPTTL')
        elseif ttl > 0 then
          redis.call('SET', key, counted, 'EX', ttl)
        else
          redis.call('SET', key, counted)
        end
      end
    end
  end
end

local replies, failure = {}, nil
for base = 2 + record_count, #ARGV - MEMBER_ARGS, MEMBER_ARGS do
  added_by_member = {}
  local ok, reply = pcall(select_member, base)
  if not ok then
    failure = type(reply) == 'table' and reply.err or tostring(reply)
    for i = 1, #added_by_member, 2 do
      local counts, value = added_by_member[i], added_by_member[i + 1]
      counts[value] = counts[value] - 1
    end
    break
  end
  replies[#replies + 1] = reply
end
write_offer_counts()
if failure then
  return redis.error_reply(failure)
end
return replies
