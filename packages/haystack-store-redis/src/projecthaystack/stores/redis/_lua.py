"""The Lua scripts: each compound decision is one script, so it is atomic on a single
node and on a cluster (every key of a store shares its hash tag, see ``_keys``).

Every script gets the store's key base (``{prefix}:``) as ``ARGV[1]`` and one of its keys
as ``KEYS[1]`` (for routing); the other keys are built inside the script from the base,
with the same escaping as :func:`~._keys.encode_part`.
"""

from __future__ import annotations

__all__ = ["DELETE", "HIS_READ", "HIS_WRITE", "PUT", "QUERY", "UPDATE"]

# Shared helpers, prepended to the scripts that need them.
_COMMON = r"""
local base = ARGV[1]
local function enc(s)
  return (string.gsub(s, '[%%:{}]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
local function feed(ids)
  if #ids > 0 then
    local maxlen = redis.call('HGET', base .. 'meta', 'feedlen') or '100000'
    redis.call('XADD', base .. 'feed', 'MAXLEN', '~', maxlen, '*', 'ids', cjson.encode(ids))
  end
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
-- ARGV[2..]: id, entity JSON, index suffixes JSON; repeated.
local ids = {}
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  reindex(id, redis.call('HGET', base .. 'm', id), ARGV[i + 2])
  local v = redis.call('INCR', base .. 'seq')
  redis.call('HSET', base .. 'e', id, ARGV[i + 1])
  redis.call('HSET', base .. 'v', id, v)
  redis.call('HSET', base .. 'm', id, ARGV[i + 2])
  redis.call('ZADD', base .. 'o', 'NX', v, id)
  ids[#ids + 1] = id
end
feed(ids)
return #ids
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
  redis.call('UNLINK', base .. 'hc:' .. e, base .. 'ho:' .. e)
  redis.call('HDEL', base .. 'hm', id)
  redis.call('UNLINK', base .. 'pa:' .. e)
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
-- ARGV[2..]: per point: id, its "zone unit" meta, chunk count, (period, packed)...,
-- odd count, (time, JSON)...  Every point's meta is checked before anything is written,
-- so a batch is all or nothing: {0, id, meta} names a point whose meta differs.
local points = {}
local i = 2
while i <= #ARGV do
  local p = {id = ARGV[i], meta = ARGV[i + 1], chunks = {}, odd = {}}
  local n = tonumber(ARGV[i + 2])
  i = i + 3
  for _ = 1, n do p.chunks[#p.chunks + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
  n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do p.odd[#p.odd + 1] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end
  points[#points + 1] = p
end
for _, p in ipairs(points) do
  local meta = redis.call('HGET', base .. 'hm', p.id)
  if meta and meta ~= p.meta then return {0, p.id, meta} end
end
for _, p in ipairs(points) do
  local e = enc(p.id)
  redis.call('HSETNX', base .. 'hm', p.id, p.meta)
  for _, c in ipairs(p.chunks) do
    redis.call('APPEND', base .. 'h:' .. e .. ':' .. c[1], c[2])
    redis.call('ZADD', base .. 'hc:' .. e, c[1], c[1])
  end
  for _, o in ipairs(p.odd) do
    redis.call('HSET', base .. 'ho:' .. e, o[1], o[2])
  end
end
return {1}
"""
)

HIS_READ = (
    _COMMON
    + r"""
-- ARGV[2..4]: id, first period, last period ('-inf'/'+inf' for open ends).
-- Returns {meta, periods..., chunks...} as {meta, {period...}, {packed...}}.
local id, e = ARGV[2], enc(ARGV[2])
local meta = redis.call('HGET', base .. 'hm', id)
if not meta then return {false, {}, {}} end
local periods = redis.call('ZRANGEBYSCORE', base .. 'hc:' .. e, ARGV[3], ARGV[4])
local chunks = {}
for _, c in ipairs(periods) do
  chunks[#chunks + 1] = redis.call('GET', base .. 'h:' .. e .. ':' .. c) or ''
end
return {meta, periods, chunks}
"""
)

HIS_COMPACT = (
    _COMMON
    + r"""
-- ARGV[2..]: id, then (period, length read, sorted packed, odd times to drop...) as
-- period, length, packed, n, times...  A chunk is replaced only if nothing was appended
-- since it was read (append-only: same length, same content).
local e = enc(ARGV[2])
local i = 3
local done = 0
while i <= #ARGV do
  local key = base .. 'h:' .. e .. ':' .. ARGV[i]
  local n = tonumber(ARGV[i + 3])
  if redis.call('STRLEN', key) == tonumber(ARGV[i + 1]) then
    redis.call('SET', key, ARGV[i + 2])
    for j = 1, n do redis.call('HDEL', base .. 'ho:' .. e, ARGV[i + 3 + j]) end
    done = done + 1
  end
  i = i + 4 + n
end
return done
"""
)

__all__ += ["HIS_COMPACT"]

_WATCH = r"""
-- A live watch's keys, or nil (an expired watch is removed here: expiry is decided by
-- the caller's clock, exactly; the keys' TTL only sweeps what nobody asks about).
local function live(wid, now)
  local w = base .. 'w:' .. enc(wid)
  local fields = redis.call('HMGET', w, 'owner', 'expires', 'lease')
  if not fields[1] then return nil end
  if tonumber(fields[2]) <= now then
    redis.call('UNLINK', w, base .. 'wi:' .. enc(wid))
    redis.call('ZREM', base .. 'wo:' .. enc(fields[1]), wid)
    return nil
  end
  return w, base .. 'wi:' .. enc(wid), fields[1], tonumber(fields[3])
end
local function renew(w, wi, owner, wid, expires, lease)
  redis.call('HSET', w, 'expires', expires, 'lease', lease)
  -- TTLs count from Redis's clock (the caller's may differ): a lease and a minute.
  redis.call('PEXPIRE', w, lease + 60000)
  if redis.call('EXISTS', wi) == 1 then redis.call('PEXPIRE', wi, lease + 60000) end
  redis.call('ZADD', base .. 'wo:' .. enc(owner), expires, wid)
  local wo = base .. 'wo:' .. enc(owner)
  if redis.call('PTTL', wo) < lease + 60000 then redis.call('PEXPIRE', wo, lease + 60000) end
end
"""

WATCH_OPEN = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..6]: watch id, dis, owner, lease ms, now ms.
local wid, owner, lease, now = ARGV[2], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local w = base .. 'w:' .. enc(wid)
redis.call('HSET', w, 'dis', ARGV[3], 'owner', owner)
renew(w, base .. 'wi:' .. enc(wid), owner, wid, now + lease, lease)
return 1
"""
)

WATCH_GET = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..3]: watch id, now ms.  {dis, owner, lease, expires, {id, version...}} or nil.
local w, wi = live(ARGV[2], tonumber(ARGV[3]))
if not w then return false end
local f = redis.call('HMGET', w, 'dis', 'owner', 'lease', 'expires')
return {f[1], f[2], f[3], f[4], redis.call('HGETALL', wi)}
"""
)

WATCH_ADD = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..]: watch id, lease ms (0: keep), now ms, ids...  Marks ids seen at their
-- current version and renews the lease; returns 0 if the watch is gone.
local wid, now = ARGV[2], tonumber(ARGV[4])
local w, wi, owner, lease = live(wid, now)
if not w then return 0 end
if tonumber(ARGV[3]) > 0 then lease = tonumber(ARGV[3]) end
for i = 5, #ARGV do
  redis.call('HSET', wi, ARGV[i], redis.call('HGET', base .. 'v', ARGV[i]) or '0')
end
renew(w, wi, owner, wid, now + lease, lease)
return 1
"""
)

WATCH_POLL = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..4]: watch id, refresh (1/0), now ms.  The ids changed since last seen (every
-- existing one on refresh), now marked seen; false if the watch is gone.
local wid, refresh, now = ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local w, wi, owner, lease = live(wid, now)
if not w then return false end
local changed = {}
local seen = redis.call('HGETALL', wi)
for i = 1, #seen, 2 do
  local id, was = seen[i], seen[i + 1]
  local v = redis.call('HGET', base .. 'v', id)
  if v and (refresh or v ~= was) then changed[#changed + 1] = id end
  local now_v = v or '0'
  if now_v ~= was then redis.call('HSET', wi, id, now_v) end
end
renew(w, wi, owner, wid, now + lease, lease)
return changed
"""
)

WATCH_CLOSE = (
    _COMMON
    + r"""
-- ARGV[2]: watch id.
local w = base .. 'w:' .. enc(ARGV[2])
local owner = redis.call('HGET', w, 'owner')
if owner then redis.call('ZREM', base .. 'wo:' .. enc(owner), ARGV[2]) end
redis.call('UNLINK', w, base .. 'wi:' .. enc(ARGV[2]))
return 1
"""
)

WATCH_COUNT = (
    _COMMON
    + _WATCH
    + r"""
-- ARGV[2..3]: owner, now ms.  Live watches of the owner (expired ones are removed).
local key = base .. 'wo:' .. enc(ARGV[2])
local now = tonumber(ARGV[3])
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now)) do live(wid, now) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
return redis.call('ZCARD', key)
"""
)

HANDSHAKE_PUT = (
    _COMMON
    + r"""
-- ARGV[2..8]: token, state, client, ttl ms, per client, total, now ms.
local token, state, client = ARGV[2], ARGV[3], ARGV[4]
local ttl, per = tonumber(ARGV[5]), tonumber(ARGV[6])
local total, now = tonumber(ARGV[7]), tonumber(ARGV[8])
local all, mine = base .. 'hs', base .. 'hsc:' .. enc(client)
local key = base .. 'h1:' .. enc(token)
local function drop(t)
  local old = redis.call('GET', base .. 'h1:' .. enc(t))
  if old then
    local c = cjson.decode(old)[2]
    redis.call('ZREM', base .. 'hsc:' .. enc(c), t)
    redis.call('UNLINK', base .. 'h1:' .. enc(t))
  end
  redis.call('ZREM', all, t)
end
-- Expired handshakes hold no slot: sweep the ones due (a bounded batch each time).
for _, t in ipairs(redis.call('ZRANGEBYSCORE', all, '-inf', now, 'LIMIT', 0, 1000)) do drop(t) end
redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
drop(token)
if redis.call('ZCARD', all) >= total then return 0 end
if redis.call('ZCARD', mine) >= per then return 0 end
redis.call('SET', key, cjson.encode({now + ttl, client, state}), 'PX', ttl + 60000)
redis.call('ZADD', all, now + ttl, token)
redis.call('ZADD', mine, now + ttl, token)
if redis.call('PTTL', mine) < ttl + 60000 then redis.call('PEXPIRE', mine, ttl + 60000) end
return 1
"""
)

HANDSHAKE_POP = (
    _COMMON
    + r"""
-- ARGV[2..3]: token, now ms.  The state (once), or false if unknown or expired.
local token, now = ARGV[2], tonumber(ARGV[3])
local key = base .. 'h1:' .. enc(token)
local raw = redis.call('GET', key)
redis.call('ZREM', base .. 'hs', token)
if not raw then return false end
local entry = cjson.decode(raw)
redis.call('UNLINK', key)
redis.call('ZREM', base .. 'hsc:' .. enc(entry[2]), token)
if tonumber(entry[1]) <= now then return false end
return entry[3]
"""
)

FAILURE_ADD = (
    _COMMON
    + r"""
-- ARGV[2..4]: key, window ms, now ms.  The failures within the window after this one.
local key = base .. 'f:' .. enc(ARGV[2])
local window, now = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('INCR', base .. 'fseq')
redis.call('ZADD', key, now, n)
redis.call('PEXPIRE', key, window + 60000)
return redis.call('ZCARD', key)
"""
)

__all__ += [
    "FAILURE_ADD",
    "HANDSHAKE_POP",
    "HANDSHAKE_PUT",
    "WATCH_ADD",
    "WATCH_CLOSE",
    "WATCH_COUNT",
    "WATCH_GET",
    "WATCH_OPEN",
    "WATCH_POLL",
]
