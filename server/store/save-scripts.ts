/**
 * Lua scripts of the durable save state (registered with ioredis `defineCommand` by RedisStore).
 * Each touches ONE key: the codespace hash (so it stays in one Redis Cluster slot), whose save
 * fields are (times in ms from Redis TIME):
 *   `dirty_since`  time of the first commit not yet saved (absent: nothing unsaved)
 *   `touched_at`   time of the last commit
 *   `ttl`          the normal TTL, seconds (restored, counted from `touched_at`, once saved)
 *   `saved_version` last version the site took
 *   `lease_owner`, `lease_until`  the save claim
 *   `save_attempts` failed attempts of the current save (for the backoff, across processes)
 * The commit script (redis-scripts.ts) sets `dirty_since`, `touched_at` and `ttl` atomically with
 * the commit. DUE_SCRIPT alone reads the due-save index instead.
 */

/** Shared prologue: `now` in ms from Redis TIME. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * claim. KEYS[1] codespace key. ARGV[1] owner, ARGV[2] lease ms, ARGV[3] debounce ms, ARGV[4] max
 * wait ms, ARGV[5] "1" to claim before due.
 * Returns {"gone"} | {"clean"} | {"busy", until} | {"claimed", epoch, version, code, dirty_since, now, attempts}.
 */
export const CLAIM_SCRIPT = `${NOW}
local key = KEYS[1]
local f = redis.call('HMGET', key, 'epoch', 'version', 'dirty_since', 'touched_at', 'lease_owner', 'lease_until', 'save_attempts')
if not f[1] then return {'gone'} end
local dirty = tonumber(f[3] or '')
if not dirty then return {'clean'} end
local leaseUntil = tonumber(f[6] or '0')
if f[5] and leaseUntil > now and (f[5] ~= ARGV[1] or ARGV[5] ~= '1') then return {'busy', leaseUntil} end
if ARGV[5] ~= '1' then
  local due = math.min(tonumber(f[4] or dirty) + tonumber(ARGV[3]), dirty + tonumber(ARGV[4]))
  if due > now then return {'busy', due} end
end
redis.call('HSET', key, 'lease_owner', ARGV[1], 'lease_until', now + tonumber(ARGV[2]))
return {'claimed', f[1], tonumber(f[2] or '0'), redis.call('HGET', key, 'code') or '', dirty, now, tonumber(f[7] or '0')}
`;

/**
 * settle. KEYS[1] codespace key. ARGV[1] owner, ARGV[2] epoch, ARGV[3] version the site took,
 * ARGV[4] claim time (ms), ARGV[5] debounce ms, ARGV[6] max wait ms.
 * Returns {"lost"} (gone or another epoch) | {"clean"} (PEXPIREs the rest of the normal TTL counted
 * from `touched_at`, at least 1 ms) | {"dirty", due} (newer commits: dirty since the claim).
 */
export const SETTLE_SCRIPT = `${NOW}
local key = KEYS[1]
local f = redis.call('HMGET', key, 'epoch', 'version', 'saved_version', 'lease_owner', 'touched_at', 'ttl')
if not f[1] or f[1] ~= ARGV[2] then return {'lost'} end
local v = tonumber(ARGV[3])
if v > tonumber(f[3] or '-1') then redis.call('HSET', key, 'saved_version', v) end
if f[4] == ARGV[1] then redis.call('HDEL', key, 'lease_owner', 'lease_until', 'save_attempts') end
local touched = tonumber(f[5] or now)
if tonumber(f[2] or '0') <= v then
  redis.call('HDEL', key, 'dirty_since', 'save_attempts')
  local ttl = tonumber(f[6] or '')
  if ttl then redis.call('PEXPIRE', key, math.max(touched + ttl * 1000 - now, 1)) end
  return {'clean'}
end
local since = tonumber(ARGV[4])
redis.call('HSET', key, 'dirty_since', since)
return {'dirty', math.min(touched + tonumber(ARGV[5]), since + tonumber(ARGV[6]))}
`;

/**
 * defer. KEYS[1] codespace key. ARGV[1] owner, ARGV[2] delay ms. If the owner still holds the lease:
 * lease_until = now + delay, save_attempts + 1; returns {"deferred", until} | {"lost"}.
 */
export const DEFER_SCRIPT = `${NOW}
local key = KEYS[1]
if redis.call('HGET', key, 'lease_owner') ~= ARGV[1] or redis.call('HEXISTS', key, 'epoch') == 0 then return {'lost'} end
local untilMs = now + tonumber(ARGV[2])
redis.call('HSET', key, 'lease_until', untilMs)
redis.call('HINCRBY', key, 'save_attempts', 1)
return {'deferred', untilMs}
`;

/** release. KEYS[1] codespace key. ARGV[1] owner. Drops the owner's lease if it holds it. */
export const RELEASE_SCRIPT = `
local key = KEYS[1]
if redis.call('HGET', key, 'lease_owner') == ARGV[1] then redis.call('HDEL', key, 'lease_owner', 'lease_until') end
return 1
`;

/**
 * due saves: the members of the due-save index scored at or before Redis's own clock (TIME, ms),
 * at most ARGV[1] of them. Redis's clock, not the server process's: the scores are Redis times (the
 * commit and claim scripts compute them), and a process whose clock is behind would otherwise find
 * saves due late by its skew. Scores of 0 mean "due now" (written when a process cannot know the
 * real due time: a released claim, a re-listed entry).
 * KEYS[1] the index. Returns the ids.
 */
export const DUE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`;
