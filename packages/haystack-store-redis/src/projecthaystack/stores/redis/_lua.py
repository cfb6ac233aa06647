"""The Lua scripts: each compound decision is one script, so it is atomic on a single
node and on a cluster (every key of a store shares its hash tag, see ``_keys``).

Every script gets the store's key base (``{prefix}:``) as ``ARGV[1]`` and one of its keys
as ``KEYS[1]`` (for routing); the other keys are built inside the script from the base,
with the same escaping as :func:`~._keys.encode_part`.
"""

from __future__ import annotations

__all__: list[str] = []

# Shared helpers, prepended to the scripts that need them.
_COMMON = r"""
local base = ARGV[1]
local function enc(s)
  return (string.gsub(s, '[%%:{}]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function feed(ids, text)
  -- The change feed: one stream entry per write, trimmed (oldest first) to about feedlen.
  -- text: ids as a JSON array already, when the caller has it.
  if #ids > 0 then
    local maxlen = redis.call('HGET', base .. 'meta', 'feedlen') or '100000'
    text = text or cjson.encode(ids)
    redis.call('XADD', base .. 'feed', 'MAXLEN', '~', maxlen, '*', 'ids', text)
  end
end
local function newer(a, b)
  -- Whether stream id a comes after stream id b.
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local function last_pos()
  local e = redis.call('XREVRANGE', base .. 'feed', '+', '-', 'COUNT', 1)
  return e[1][1]
end
local function reindex(id, old, new)
  -- old, new: JSON arrays of index key suffixes; only the difference is written.
  local had = {}
  if old then for _, k in ipairs(cjson.decode(old)) do had[k] = true end end
  for _, k in ipairs(cjson.decode(new)) do
    if had[k] then had[k] = nil else redis.call('SADD', base .. k, id) end
  end
  for k, _ in pairs(had) do redis.call('SREM', base .. k, id) end
end
"""

PUT = (
    _COMMON
    + r"""
-- ARGV[2]: the ids as JSON (also the feed's entry); ARGV[3]: JSON [ends of the entity
-- texts, ends of the suffix texts, groups]; ARGV[4]: the entity texts (JSON v4) end to
-- end; ARGV[5]: each entity's index suffixes as a JSON array, end to end.  groups:
-- {suffix: [ids]}, the sets the batch adds to if every id is new.  The ids are
-- distinct.  A few arguments, not three per entity: redis-py packs each argument in
-- Python.  Redis calls go per set and per chunk of entities, never per entity
-- and set: an all-new batch SADDs the groups as they are; otherwise each entity's old
-- suffixes (a few HMGETs) are compared with its new ones, unchanged text skipped, and the
-- differences gathered into one SREM and one SADD per set.
local CHUNK = 1000  -- arguments per call stay well under Lua's stack limit
local ids, head = cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local ends_e, ends_m, groups = head[1], head[2], head[3]
local n = #ids
local function piece(all, ends, i)
  return string.sub(all, (ends[i - 1] or 0) + 1, ends[i])
end
local old, fresh = {}, true
for c = 1, n, CHUNK do
  local got = redis.call('HMGET', base .. 'm', unpack(ids, c, math.min(c + CHUNK - 1, n)))
  for j = 1, #got do
    if got[j] then old[c + j - 1] = got[j]; fresh = false end
  end
end
local function each(cmd, sets)
  for k, members in pairs(sets) do
    for c = 1, #members, CHUNK do
      redis.call(cmd, base .. k, unpack(members, c, math.min(c + CHUNK - 1, #members)))
    end
  end
end
if fresh then
  each('SADD', groups)
else
  local add, rem = {}, {}
  local function gather(into, k, id)
    local members = into[k]
    if not members then members = {}; into[k] = members end
    members[#members + 1] = id
  end
  for i, id in ipairs(ids) do
    local was, now = old[i], piece(ARGV[5], ends_m, i)
    if not was then
      for _, k in ipairs(cjson.decode(now)) do gather(add, k, id) end
    elseif was ~= now then  -- the same text: the same sets, nothing to do
      local had = {}
      for _, k in ipairs(cjson.decode(was)) do had[k] = true end
      for _, k in ipairs(cjson.decode(now)) do
        if had[k] then had[k] = nil else gather(add, k, id) end
      end
      for k, _ in pairs(had) do gather(rem, k, id) end
    end
  end
  each('SREM', rem)
  each('SADD', add)
end
-- Versions in batch order: a new id's version is also its place in the order.
local v0 = redis.call('INCRBY', base .. 'seq', n) - n
for c = 1, n, CHUNK do
  local e, v, m, o = {}, {}, {}, {}
  for i = c, math.min(c + CHUNK - 1, n) do
    local id = ids[i]
    e[#e + 1] = id; e[#e + 1] = piece(ARGV[4], ends_e, i)
    v[#v + 1] = id; v[#v + 1] = v0 + i
    m[#m + 1] = id; m[#m + 1] = piece(ARGV[5], ends_m, i)
    o[#o + 1] = v0 + i; o[#o + 1] = id
  end
  redis.call('HSET', base .. 'e', unpack(e))
  redis.call('HSET', base .. 'v', unpack(v))
  redis.call('HSET', base .. 'm', unpack(m))
  redis.call('ZADD', base .. 'o', 'NX', unpack(o))
end
feed(ids, ARGV[2])
return n
"""
)

READ = (
    _COMMON
    + r"""
-- ARGV[2]: an id; ARGV[3..]: the hashes to read its fields from ('e', 'v', 'p').  One
-- consistent read, as a script runs alone; a field that is absent is ''.
local out = {}
for i = 3, #ARGV do out[#out + 1] = redis.call('HGET', base .. ARGV[i], ARGV[2]) or '' end
return out
"""
)

UPDATE = (
    _COMMON
    + r"""
-- ARGV[2..5]: id, version read, new entity JSON, new index suffixes JSON.
-- Applied only if the entity is still at the version read: 1 done, 0 changed meanwhile,
-- -1 gone.
local id = ARGV[2]
local v = redis.call('HGET', base .. 'v', id)
if not v then return -1 end
if v ~= ARGV[3] then return 0 end
reindex(id, redis.call('HGET', base .. 'm', id), ARGV[5])
v = redis.call('INCR', base .. 'seq')
redis.call('HSET', base .. 'e', id, ARGV[4])
redis.call('HSET', base .. 'v', id, v)
redis.call('HSET', base .. 'm', id, ARGV[5])
feed({id})
return 1
"""
)

DELETE = (
    _COMMON
    + r"""
-- ARGV[2..]: ids.  Removes each entity with its indexes, history and priority array.
local gone = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local old = redis.call('HGET', base .. 'm', id)
  if old then
    reindex(id, old, '[]')
    redis.call('HDEL', base .. 'e', id)
    redis.call('HDEL', base .. 'v', id)
    redis.call('HDEL', base .. 'm', id)
    redis.call('ZREM', base .. 'o', id)
    gone[#gone + 1] = id
  end
  local e = enc(id)
  for _, c in ipairs(redis.call('ZRANGE', base .. 'hc:' .. e, 0, -1)) do
    redis.call('UNLINK', base .. 'h:' .. e .. ':' .. c)
  end
  for _, c in ipairs(redis.call('ZRANGE', base .. 'hc:' .. e, 0, -1)) do
    redis.call('UNLINK', base .. 'ho:' .. e .. ':' .. c)
  end
  redis.call('UNLINK', base .. 'hc:' .. e)
  redis.call('HDEL', base .. 'hm', id)
  redis.call('HDEL', base .. 'p', id)
end
feed(gone)
return #gone
"""
)

QUERY = (
    _COMMON
    + r"""
-- ARGV[2]: the plan, a JSON array of steps run on a stack of keys (see _query.py);
-- ARGV[3]: how many to return (-1: all).  Returns {dirty names, ids, entities}: ids in
-- insertion order; "dirty" names the path steps through tags that some entity holds as a
-- Dict, where the plan's sets are only candidates.
local plan = cjson.decode(ARGV[2])
local limit = tonumber(ARGV[3])
local O = base .. 'o'
local stack, scratch, dirty = {}, {}, {}
local function tmp()
  local k = base .. 'x:' .. (#scratch + 1)
  scratch[#scratch + 1] = k
  redis.call('DEL', k)
  return k
end
local function members(k)
  local t = redis.call('TYPE', k)['ok']
  if t == 'set' then return redis.call('SMEMBERS', k) end
  if t == 'zset' then return redis.call('ZRANGE', k, 0, -1) end
  return {}
end
local function combine(cmd, n)
  local keys = {}
  for i = #stack - n + 1, #stack do keys[#keys + 1] = stack[i] end
  for _ = 1, n do stack[#stack] = nil end
  local out = tmp()
  redis.call(cmd, out, #keys, unpack(keys))
  stack[#stack + 1] = out
end
for _, step in ipairs(plan) do
  local op = step[1]
  if op == 'k' then
    stack[#stack + 1] = base .. step[2]
  elseif op == 'u' then
    stack[#stack + 1] = O
  elseif op == 'ids' then
    local out = tmp()
    for i = 2, #step, 500 do
      local chunk = {}
      for j = i, math.min(i + 499, #step) do chunk[#chunk + 1] = step[j] end
      redis.call('SADD', out, unpack(chunk))
    end
    stack[#stack + 1] = out
  elseif op == 'and' then
    combine('ZINTERSTORE', step[2])
  elseif op == 'or' then
    combine('ZUNIONSTORE', step[2])
  elseif op == 'not' then
    local src = stack[#stack]
    local out = tmp()
    redis.call('ZDIFFSTORE', out, 2, O, src)
    stack[#stack] = out
  elseif op == 'via' then
    -- The entities whose tag step[2] (already escaped) refers to a member of the top set.
    local src = stack[#stack]
    local out = tmp()
    if step[2] == 'id' then
      redis.call('ZINTERSTORE', out, 2, O, src)
    else
      local prefix = base .. 'r:' .. step[2] .. ':'
      local keys = {}
      local function flush()
        if #keys > 0 then
          redis.call('ZUNIONSTORE', out, #keys + 1, out, unpack(keys))
          keys = {}
        end
      end
      for _, m in ipairs(members(src)) do
        keys[#keys + 1] = prefix .. enc(m)
        if #keys >= 500 then flush() end
      end
      flush()
      local nested = base .. 'd:' .. step[2]
      if redis.call('EXISTS', nested) == 1 then
        dirty[#dirty + 1] = step[2]
        redis.call('ZUNIONSTORE', out, 2, out, nested)
      end
    end
    stack[#stack] = out
  end
end
local res = tmp()
redis.call('ZINTERSTORE', res, 2, O, stack[#stack], 'WEIGHTS', 1, 0)
local ids
if limit >= 0 and #dirty == 0 then
  ids = limit > 0 and redis.call('ZRANGE', res, 0, limit - 1) or {}
else
  ids = redis.call('ZRANGE', res, 0, -1)
end
local recs = {}
if #ids > 0 then
  for i = 1, #ids, 1000 do
    local chunk = {}
    for j = i, math.min(i + 999, #ids) do chunk[#chunk + 1] = ids[j] end
    for _, r in ipairs(redis.call('HMGET', base .. 'e', unpack(chunk))) do recs[#recs + 1] = r end
  end
end
redis.call('DEL', unpack(scratch))
return {dirty, ids, recs}
"""
)


HIS_WRITE = (
    _COMMON
    + r"""
-- ARGV[2..]: per point: id, its meta, chunk count, (day, packed)..., odd count,
-- (day, time, JSON)...  Every point is checked before anything is written, so a batch
-- is all or nothing: {0, ids...} names points that are no entities; {2, id, meta} a point
-- whose meta differs from the one packed for.
local points = {}
local i = 2
while i <= #ARGV do
  local p = {id = ARGV[i], meta = ARGV[i + 1], chunks = {}, odd = {}}
  local n = tonumber(ARGV[i + 2])
  i = i + 3
  for _ = 1, n do p.chunks[#p.chunks + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
  n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do p.odd[#p.odd + 1] = {ARGV[i], ARGV[i + 1], ARGV[i + 2]}; i = i + 3 end
  points[#points + 1] = p
end
local missing = {0}
for _, p in ipairs(points) do
  if redis.call('HEXISTS', base .. 'e', p.id) == 0 then missing[#missing + 1] = p.id end
end
if #missing > 1 then return missing end
for _, p in ipairs(points) do
  local meta = redis.call('HGET', base .. 'hm', p.id)
  if meta and meta ~= p.meta then return {2, p.id, meta} end
end
for _, p in ipairs(points) do
  local e = enc(p.id)
  redis.call('HSETNX', base .. 'hm', p.id, p.meta)
  for _, c in ipairs(p.chunks) do
    redis.call('APPEND', base .. 'h:' .. e .. ':' .. c[1], c[2])
    redis.call('ZADD', base .. 'hc:' .. e, c[1], c[1])
  end
  for _, o in ipairs(p.odd) do
    redis.call('HSET', base .. 'ho:' .. e .. ':' .. o[1], o[2], o[3])
  end
end
return {1}
"""
)

HIS_READ = (
    _COMMON
    + r"""
-- ARGV[2..3]: first day, last day ('-inf'/'+inf' for open ends); ARGV[4..]: ids.
-- For each id: {meta or false, {day...}, {packed...}, {odd hash per day...}}.
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local e = enc(id)
  local meta = redis.call('HGET', base .. 'hm', id)
  local days, chunks, odd = {}, {}, {}
  if meta then
    days = redis.call('ZRANGEBYSCORE', base .. 'hc:' .. e, ARGV[2], ARGV[3])
    for _, d in ipairs(days) do
      chunks[#chunks + 1] = redis.call('GET', base .. 'h:' .. e .. ':' .. d) or ''
      odd[#odd + 1] = redis.call('HGETALL', base .. 'ho:' .. e .. ':' .. d)
    end
  end
  out[#out + 1] = {meta or false, days, chunks, odd}
end
return out
"""
)

HIS_COMPACT = (
    _COMMON
    + r"""
-- ARGV[2..]: id, then per chunk: day, length read, tidy packed, n, odd times to drop...
-- A chunk is replaced only if nothing was appended since it was read (append-only: the
-- same length is the same content).
local e = enc(ARGV[2])
local i = 3
local done = 0
while i <= #ARGV do
  local key = base .. 'h:' .. e .. ':' .. ARGV[i]
  local n = tonumber(ARGV[i + 3])
  if redis.call('STRLEN', key) == tonumber(ARGV[i + 1]) then
    redis.call('SET', key, ARGV[i + 2])
    for j = 1, n do redis.call('HDEL', base .. 'ho:' .. e .. ':' .. ARGV[i], ARGV[i + 3 + j]) end
    done = done + 1
  end
  i = i + 4 + n
end
return done
"""
)

FEED = (
    _COMMON
    + r"""
-- ARGV[2]: cursor ('' for now), ARGV[3]: most entries to read.
-- {cursor, reset (0/1), ids JSON arrays...}.  A cursor is the id of the last entry read;
-- if that entry was trimmed away, what followed it is unknown: reset.
local F = base .. 'feed'
local cursor = ARGV[2]
local now = last_pos()
if cursor == '' then return {now, 0} end
if not string.match(cursor, '^%d+%-%d+$') or newer(cursor, now) then return {now, 1} end
if #redis.call('XRANGE', F, cursor, cursor) == 0 then return {now, 1} end
local out = {cursor, 0}
for _, entry in ipairs(redis.call('XRANGE', F, '(' .. cursor, '+', 'COUNT', ARGV[3])) do
  out[1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
"""
)

_WATCH = r"""
-- A watch is a hash w:<id> (dis, owner, lease seconds, expires ms, pos: the feed position
-- of its last poll) and a hash wi:<id> of its ids, each with the feed position it was
-- subscribed at.  Expiry is decided by the caller's clock, exactly; the keys' TTLs only
-- sweep what nobody asks about.
local function watch_keys(wid)
  return base .. 'w:' .. enc(wid), base .. 'wi:' .. enc(wid)
end
local function live(wid, now, user, any_owner)
  local w, wi = watch_keys(wid)
  local f = redis.call('HMGET', w, 'owner', 'expires')
  if not f[1] then return nil end
  if tonumber(f[2]) <= now then
    redis.call('UNLINK', w, wi)
    redis.call('ZREM', base .. 'wo:' .. enc(f[1]), wid)
    return nil
  end
  if f[1] ~= user and not any_owner then return nil end
  return w, wi, f[1]
end
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function renew(w, wi, owner, wid, now, lease_ms)
  local expires = now + lease_ms
  redis.call('HSET', w, 'expires', expires, 'lease', lease_ms / 1000)
  -- TTLs count from Redis's clock (the caller's may differ): the lease and a minute.
  redis.call('PEXPIRE', w, lease_ms + 60000)
  if redis.call('EXISTS', wi) == 1 then redis.call('PEXPIRE', wi, lease_ms + 60000) end
  local wo = base .. 'wo:' .. enc(owner)
  redis.call('ZADD', wo, expires, wid)
  extend(wo, lease_ms + 60000)
end
local function header(w, wi, wid)
  local f = redis.call('HMGET', w, 'dis', 'owner', 'lease', 'expires')
  return {wid, f[1], f[2], f[3], f[4], redis.call('HLEN', wi)}
end
"""

WATCH_SUB = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..10]: watch id ('' to open one), new id, user, any owner (1/0), dis, lease ms,
-- now ms, max watches, max ids; ARGV[11..]: ids.  {1, header, records...}; {0} when the
-- watch is unknown; {-1, 'watches'|'ids'} when a cap would be passed (nothing changed).
local wid, user, any_owner = ARGV[2], ARGV[4], ARGV[5] == '1'
local lease, now = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_watches, max_ids = tonumber(ARGV[9]), tonumber(ARGV[10])
local w, wi, owner
if wid == '' then
  wid = ARGV[3]
  owner = user
  local wo = base .. 'wo:' .. enc(user)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', wo, '-inf', now)) do
    live(old, now, user, true)
  end
  redis.call('ZREMRANGEBYSCORE', wo, '-inf', now)
  if redis.call('ZCARD', wo) >= max_watches then return {-1, 'watches'} end
  w, wi = watch_keys(wid)
  redis.call('HSET', w, 'dis', ARGV[6], 'owner', user, 'pos', last_pos())
else
  w, wi, owner = live(wid, now, user, any_owner)
  if not w then return {0} end
end
local recs = {}
local new = {}
local fresh = 0
for i = 11, #ARGV do
  local rec = redis.call('HGET', base .. 'e', ARGV[i])
  recs[#recs + 1] = rec or false
  if rec and not new[ARGV[i]] then
    new[ARGV[i]] = true
    if redis.call('HEXISTS', wi, ARGV[i]) == 0 then fresh = fresh + 1 end
  end
end
if redis.call('HLEN', wi) + fresh > max_ids then
  if ARGV[2] == '' then redis.call('UNLINK', w) end
  return {-1, 'ids'}
end
local pos = last_pos()
for id, _ in pairs(new) do redis.call('HSET', wi, id, pos) end
renew(w, wi, owner, wid, now, lease)
return {1, header(w, wi, wid), recs}
"""
)

WATCH_UNSUB = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..6]: watch id, close (1/0), user, any owner (1/0), now ms; ARGV[7..]: ids.
local wid = ARGV[2]
local w, wi, owner = live(wid, tonumber(ARGV[6]), ARGV[4], ARGV[5] == '1')
if not w then return 0 end
if ARGV[3] == '1' then
  redis.call('UNLINK', w, wi)
  redis.call('ZREM', base .. 'wo:' .. enc(owner), wid)
elseif #ARGV >= 7 then
  for i = 7, #ARGV, 500 do
    redis.call('HDEL', wi, unpack(ARGV, i, math.min(i + 499, #ARGV)))
  end
end
return 1
"""
)

WATCH_POLL = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..5]: user, any owner (1/0), refresh (1/0), now ms; ARGV[6..]: watch ids.
-- For each watch: false, or the ids changed since its last poll (read from the feed:
-- the cost follows the changes), every id on refresh or when the feed was trimmed past
-- the watch's last poll.
local user, any_owner, refresh, now = ARGV[2], ARGV[3] == '1', ARGV[4] == '1', tonumber(ARGV[5])
local F = base .. 'feed'
local head = last_pos()
local out = {}
for i = 6, #ARGV do
  local wid = ARGV[i]
  local w, wi, owner = live(wid, now, user, any_owner)
  if not w then
    out[#out + 1] = false
  else
    local pos = redis.call('HGET', w, 'pos')
    local all = refresh or not pos or #redis.call('XRANGE', F, pos, pos) == 0
    local changed = {}
    if all then
      changed = redis.call('HKEYS', wi)
    else
      local seen = {}
      for _, entry in ipairs(redis.call('XRANGE', F, '(' .. pos, '+')) do
        for _, id in ipairs(cjson.decode(entry[2][2])) do
          if not seen[id] then
            local since = redis.call('HGET', wi, id)
            if since and newer(entry[1], since) then
              seen[id] = true
              changed[#changed + 1] = id
            end
          end
        end
      end
    end
    redis.call('HSET', w, 'pos', head)
    local lease = tonumber(redis.call('HGET', w, 'lease')) * 1000
    renew(w, wi, owner, wid, now, lease)
    out[#out + 1] = changed
  end
end
return out
"""
)

POINT_WRITE = (
    _COMMON
    + r"""
-- ARGV[2..7]: id, entity version read, levels read ('' none), levels to store ('' none),
-- new entity JSON ('' unchanged), its index suffixes.  Applied only if neither the point
-- nor its array changed since read: 1 done, 0 changed meanwhile, -1 no such point.
local id = ARGV[2]
local v = redis.call('HGET', base .. 'v', id)
if not v then return -1 end
local levels = redis.call('HGET', base .. 'p', id) or ''
if v ~= ARGV[3] or levels ~= ARGV[4] then return 0 end
if ARGV[5] == '' then redis.call('HDEL', base .. 'p', id)
else redis.call('HSET', base .. 'p', id, ARGV[5]) end
if ARGV[6] ~= '' then
  reindex(id, redis.call('HGET', base .. 'm', id), ARGV[7])
  v = redis.call('INCR', base .. 'seq')
  redis.call('HSET', base .. 'e', id, ARGV[6])
  redis.call('HSET', base .. 'v', id, v)
  redis.call('HSET', base .. 'm', id, ARGV[7])
  feed({id})
end
return 1
"""
)

USER_UPDATE = (
    _COMMON
    + r"""
-- ARGV[2..5]: username, user JSON read, new user JSON, revoke (1/0).  1 done, 0 changed
-- meanwhile, -1 no such user.  Revoking ends every session of the user in the same step.
local name = ARGV[2]
local cur = redis.call('HGET', base .. 'u', name)
if not cur then return -1 end
if cur ~= ARGV[3] then return 0 end
redis.call('HSET', base .. 'u', name, ARGV[4])
if ARGV[5] == '1' then
  local su = base .. 'su:' .. enc(name)
  for _, h in ipairs(redis.call('SMEMBERS', su)) do redis.call('UNLINK', base .. 's:' .. h) end
  redis.call('UNLINK', su)
end
return 1
"""
)

USER_DELETE = (
    _COMMON
    + r"""
-- ARGV[2]: username.  Removes the user and every session of theirs.
local name = ARGV[2]
local gone = redis.call('HDEL', base .. 'u', name)
local su = base .. 'su:' .. enc(name)
for _, h in ipairs(redis.call('SMEMBERS', su)) do redis.call('UNLINK', base .. 's:' .. h) end
redis.call('UNLINK', su)
return gone
"""
)

SESSION_PUT = (
    _COMMON
    + r"""
-- ARGV[2..5]: token hash, session JSON, username, ttl ms.
local su = base .. 'su:' .. enc(ARGV[4])
redis.call('SET', base .. 's:' .. ARGV[2], ARGV[3], 'PX', ARGV[5])
redis.call('SADD', su, ARGV[2])
if redis.call('PTTL', su) < tonumber(ARGV[5]) then redis.call('PEXPIRE', su, ARGV[5]) end
return 1
"""
)

AUTHENTICATE = (
    _COMMON
    + r"""
-- ARGV[2]: token hash.  {session JSON, user JSON} or false.
local s = redis.call('GET', base .. 's:' .. ARGV[2])
if not s then return false end
local u = redis.call('HGET', base .. 'u', cjson.decode(s)['username'])
if not u then return false end
return {s, u}
"""
)

SESSION_DELETE = (
    _COMMON
    + r"""
-- ARGV[2]: token hash.
local key = base .. 's:' .. ARGV[2]
local s = redis.call('GET', key)
if s then
  redis.call('SREM', base .. 'su:' .. enc(cjson.decode(s)['username']), ARGV[2])
  redis.call('UNLINK', key)
end
return 1
"""
)

CLAIM = (
    _COMMON
    + r"""
-- ARGV[2..4]: handshake key, expires ms, now ms.  1 the first time, 0 for a replay.
local key = base .. 'hr:' .. enc(ARGV[2])
local exp, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local had = redis.call('GET', key)
if had and tonumber(had) > now then return 0 end
redis.call('SET', key, exp, 'PX', math.max(exp - now, 1) + 60000)
return 1
"""
)

THROTTLE = (
    _COMMON
    + r"""
-- ARGV[2..4]: window ms, now ms, record (1/0); ARGV[5..]: (key, limit)...
-- Each key is a list of attempt times in the order counted; those at or before now -
-- window leave from the front.  0 when a key is at its limit (nothing counted); else 1,
-- counting the attempt under every key when recording.
local window, now, record = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local cutoff = now - window
local keys = {}
for i = 5, #ARGV, 2 do
  local k = base .. 'f:' .. enc(ARGV[i])
  while true do
    local first = redis.call('LINDEX', k, 0)
    if not first or tonumber(first) > cutoff then break end
    redis.call('LPOP', k)
  end
  if redis.call('LLEN', k) >= tonumber(ARGV[i + 1]) then return 0 end
  keys[#keys + 1] = k
end
if record then
  for _, k in ipairs(keys) do
    redis.call('RPUSH', k, now)
    if redis.call('PTTL', k) < window + 60000 then redis.call('PEXPIRE', k, window + 60000) end
  end
end
return 1
"""
)

FORGIVE = (
    _COMMON
    + r"""
-- ARGV[2]: how many keys to refund; then those keys, then the keys to clear.
local n = tonumber(ARGV[2])
for i = 3, 2 + n do redis.call('RPOP', base .. 'f:' .. enc(ARGV[i])) end
for i = 3 + n, #ARGV do redis.call('UNLINK', base .. 'f:' .. enc(ARGV[i])) end
return 1
"""
)
