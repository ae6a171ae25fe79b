import { EPOCH_LUA } from "./epoch.js";

/**
 * Lua scripts for RedisStore (registered with ioredis `defineCommand`).
 *
 * Layout: each codespace is ONE hash key with fields
 *   `code`    full current text (UTF-8)
 *   `epoch`   random id fixed when the store created/adopted the record
 *   `version` integer, number of accepted updates since `epoch`
 *   `h:<n>`   JSON WireUpdate `{clientID, changes}` that produced version n (only the last
 *             `historyLength` of them are kept)
 * The site API writes hashes with only `name` and `code`; `open` adopts them.
 *
 * Snapshot replies are always `{"snapshot", version, epoch, code}`.
 */

/**
 * open.
 * KEYS[1] codespace key. ARGV[1] a random id for the epoch made when creating/adopting (epoch.ts:
 * `<Redis time>-<id>`), ARGV[2] TTL seconds,
 * ARGV[3] (optional) code of a new codespace (loaded from the site).
 * Creates `{code ARGV[3] or "", version 0, epoch}` with EXPIRE when the key is absent; adopts a hash without
 * `epoch` (keeps `code`, or "" when it has none; sets version 0, epoch and EXPIRE).
 * Returns `{code, version, epoch}`.
 */
export const OPEN_SCRIPT = `${EPOCH_LUA}
local key = KEYS[1]
local epoch = redis.call('HGET', key, 'epoch')
if not epoch then
  local code = redis.call('HGET', key, 'code') or ARGV[3] or ''
  epoch = epochOf(ARGV[1])
  redis.call('HSET', key, 'code', code, 'version', 0, 'epoch', epoch)
  redis.call('EXPIRE', key, ARGV[2])
  return {code, 0, epoch}
end
local code = redis.call('HGET', key, 'code') or ''
local version = tonumber(redis.call('HGET', key, 'version') or '0')
return {code, version, epoch}
`;

/** Operands of the widest concatenation in JOIN_LUA (Lua 5.1's parser allows about 195 in one expression). */
const JOIN_WIDTH = 180;

/** `local function name(t) return (t[1] or '')..(t[2] or '')..…..(t[n] or '') end`: one Lua concatenation of n operands. */
function concatFunction(name: string, n: number): string {
  const operands = Array.from({ length: n }, (_, i) => `(t[${i + 1}] or '')`);
  return `local function ${name}(t) return ${operands.join("..")} end`;
}

/**
 * Lua `join(t)`: the concatenation of the strings t[1..#t] (the commit script's pieces: the stored
 * text between the changed ranges and the inserts), hashing as few bytes as it can.
 *
 * Why: Redis 7 hashes EVERY byte of every string Lua creates (redis/redis#9449; stock Lua 5.1
 * samples at most 32), about 1.3 ns a byte on the bench machine, and that hashing is most of what a
 * commit on a large text costs. `table.concat` of many pieces goes through luaL_Buffer, which
 * flushes every 8 KB and re-concatenates its growing stack: a 1 MB result from 1,001 pieces hashed
 * several MB. One Lua expression `a..b..c..` is a single OP_CONCAT that creates (and hashes) only
 * its result, but Lua 5.1's parser takes at most about 195 operands. So: up to JOIN_WIDTH pieces
 * (about 90 changed ranges) in one expression, each further JOIN_WIDTH-fold in one more level
 * (every level hashes the text once more). Measurements: bench/notes.md (2026-12-01, 20:35).
 */
const JOIN_LUA = `
${concatFunction("cat16", 16)}
${concatFunction("catw", JOIN_WIDTH)}
local function join(t)
  local m = #t
  if m <= 16 then return cat16(t) end
  if m <= ${JOIN_WIDTH} then return catw(t) end
  local f, run = {}, {}
  for i = 1, m do
    run[#run + 1] = t[i]
    if #run == ${JOIN_WIDTH} then f[#f + 1] = catw(run); run = {} end
  end
  if #run > 0 then f[#f + 1] = catw(run) end
  return join(f)
end
`;

/**
 * commit (compare-and-set).
 * KEYS[1] codespace key.
 * ARGV[1] epoch, ARGV[2] baseVersion, ARGV[3] mode, ARGV[4] new code (mode "set") or the patch
 * (mode "apply", see below), ARGV[5] TTL seconds, ARGV[6] historyLength,
 * ARGV[7] n = number of updates, ARGV[8..7+n] update JSONs (update i produces version base+i),
 * ARGV[8+n] commit-feed channel, ARGV[9+n] commit-feed message: published on success, inside the
 * script, so every subscriber sees the commits of a codespace in the order Redis executed them;
 * ARGV[10+n] the publish command: `PUBLISH` (one Redis) or `SPUBLISH` (Redis Cluster: sharded
 * pub/sub, the channel is in KEYS[1]'s slot, feed-channel.ts).
 * Mode "apply": ARGV[4] is `<resultBytes> <from> <to> <insertBytes> ...\n<inserts>`: the header
 * lists the combined changes of all n updates in UTF-8 byte offsets of the stored `code` (sorted,
 * non-overlapping), the inserts follow the newline back to back. The script applies them in one
 * HGET and one HSET, whatever n is (see JOIN_LUA for how the pieces are joined), sparing the client
 * from sending the whole text; if a range does not fit or the result's length is not `resultBytes`
 * it writes nothing and returns {"resync"} (the caller then commits in mode "set").
 * Returns one of
 *   {"ok", newVersion}
 *   {"epoch"}                        key missing (or without epoch)
 *   {"epoch", storedEpoch}           another incarnation
 *   {"conflict", storedVersion, json_base+1, ..., json_stored}
 *   {"snapshot", version, epoch, code}   conflict where history does not reach back, or base > stored
 *   {"resync"}                       mode "apply" gave an unexpected length; nothing written
 * On ok: HSET code/version/h:<n> (only entries inside the window), HDEL entries that fall off,
 * PEXPIRE ttl when the key's PTTL is more than 1 s (half the TTL, if that is less) short of it or
 * above it (so at most about one expire keyspace event per second per busy codespace; the key
 * expires up to 1 s early).
 * Saves (ARGV[11+n] debounce ms, ARGV[12+n] max wait ms, ARGV[13+n] retention s; absent: not
 * saved): on ok also marks the codespace unsaved in its own hash (`dirty_since` kept if set,
 * `touched_at`, `ttl`; times from Redis TIME, ms), expires after max(ttl, retention) instead of ttl, and
 * returns {"ok", newVersion, due} with due = min(touched_at + debounce, dirty_since + max wait).
 */
export const COMMIT_SCRIPT = `${JOIN_LUA}
local key = KEYS[1]
local head = redis.call('HMGET', key, 'epoch', 'version', 'dirty_since')
local epoch = head[1]
if not epoch then return {'epoch'} end
if epoch ~= ARGV[1] then return {'epoch', epoch} end
local stored = tonumber(head[2] or '0')
local base = tonumber(ARGV[2])
local hl = tonumber(ARGV[6])
if stored == base then
  local n = tonumber(ARGV[7])
  local newv = base + n
  local keepFrom = newv - hl + 1
  local code = ARGV[4]
  if ARGV[3] == 'apply' then
    local p = ARGV[4]
    local nl = string.find(p, '\\n', 1, true)
    -- the header's numbers: cjson parses them in C, faster than gmatch + tonumber
    local nums = cjson.decode('[' .. string.gsub(string.sub(p, 1, nl - 1), ' ', ',') .. ']')
    local old = redis.call('HGET', key, 'code') or ''
    -- old[a..b] (1-based, inclusive); old itself when that is all of it (an insert at the start or
    -- the end): every new string costs a hash of its bytes
    local function slice(a, b)
      if a == 1 and b >= #old then return old end
      return string.sub(old, a, b)
    end
    local parts, pos, at = {}, 0, nl + 1
    for j = 2, #nums - 2, 3 do
      local from, to, len = nums[j], nums[j + 1], nums[j + 2]
      if from < pos or to < from or to > #old then return {'resync'} end
      parts[#parts + 1] = slice(pos + 1, from)
      parts[#parts + 1] = string.sub(p, at, at + len - 1)
      at = at + len
      pos = to
    end
    parts[#parts + 1] = slice(pos + 1, #old)
    code = join(parts)
    if #code ~= nums[1] then return {'resync'} end
  end
  -- code, version, the save marks and the history in one HSET (per 1,000 fields), and one HDEL per
  -- 1,000 fields that fall off the window: not one call per field or per update
  local h = {'code', code, 'version', newv}
  local save, due = ARGV[11 + n], nil
  if save then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local dirty = tonumber(head[3] or '') or now
    h[5], h[6], h[7], h[8], h[9], h[10] = 'dirty_since', dirty, 'touched_at', now, 'ttl', ARGV[5]
    due = math.min(now + tonumber(save), dirty + tonumber(ARGV[12 + n]))
  end
  for i = math.max(1, keepFrom - base), n do
    h[#h + 1] = 'h:' .. (base + i)
    h[#h + 1] = ARGV[7 + i]
  end
  for i = 1, #h, 2000 do redis.call('HSET', key, unpack(h, i, math.min(i + 1999, #h))) end
  h = {}
  for v = math.max(1, base - hl + 1), math.min(base, keepFrom - 1) do h[#h + 1] = 'h:' .. v end
  for i = 1, #h, 1000 do redis.call('HDEL', key, unpack(h, i, math.min(i + 999, #h))) end
  -- The TTL is set again only when it is more than a second short of (or above) the one asked:
  -- every EXPIRE is a keyspace event that Redis sends to each server process, and a busy codespace
  -- commits many times a second. The key thus expires TTL seconds after the last commit, up to a
  -- second earlier.
  -- PEXPIRE gets the seconds' digits and '000', not a Lua number: Redis prints a number of 1e17 or
  -- more as "1e+17", which PEXPIRE refuses, after the HSET above (no rollback).
  local secs = ARGV[5]
  if save and tonumber(ARGV[13 + n]) > tonumber(secs) then secs = ARGV[13 + n] end
  local ttl = 1000 * tonumber(secs)
  -- The slack is half the TTL when that is less than a second: with a TTL of 1 s a key is never more
  -- than a second short, and would expire 1 s after it was set, however busy.
  local left = redis.call('PTTL', key)
  if left < ttl - math.min(1000, ttl / 2) or left > ttl then redis.call('PEXPIRE', key, secs .. '000') end
  redis.call(ARGV[10 + n], ARGV[8 + n], ARGV[9 + n])
  if due then return {'ok', newv, due} end
  return {'ok', newv}
end
local function snapshot()
  return {'snapshot', stored, epoch, redis.call('HGET', key, 'code') or ''}
end
if base > stored or base < 0 then return snapshot() end
local out = {'conflict', stored}
for v = base + 1, stored do
  local e = redis.call('HGET', key, 'h:' .. v)
  if not e then return snapshot() end
  out[#out + 1] = e
end
return out
`;

/**
 * history.
 * KEYS[1] codespace key. ARGV[1] epoch, ARGV[2] version (return the updates after it).
 * Returns one of
 *   {"updates", storedVersion, json_version+1, ..., json_stored}   (none when version >= stored)
 *   {"epoch"} / {"epoch", storedEpoch}
 *   {"snapshot", version, epoch, code}   history does not reach back to version+1
 */
export const HISTORY_SCRIPT = `
local key = KEYS[1]
local epoch = redis.call('HGET', key, 'epoch')
if not epoch then return {'epoch'} end
if epoch ~= ARGV[1] then return {'epoch', epoch} end
local stored = tonumber(redis.call('HGET', key, 'version') or '0')
local from = tonumber(ARGV[2])
local out = {'updates', stored}
if from < 0 then from = -1 end
for v = from + 1, stored do
  local e = redis.call('HGET', key, 'h:' .. v)
  if not e then return {'snapshot', stored, epoch, redis.call('HGET', key, 'code') or ''} end
  out[#out + 1] = e
end
return out
`;

/**
 * restart: the store lost commits of this epoch (a failover promoted a replica that had not
 * received them, or a restore from an older copy). A process noticed because it had seen a version
 * the store no longer has. Starts a new epoch on the stored text, so that the versions of the lost
 * commits are never reused for other text under the same epoch.
 * KEYS[1] codespace key. ARGV[1] the epoch that lost commits, ARGV[2] a random id for the new epoch
 * (epoch.ts), ARGV[3]
 * commit-feed channel, ARGV[4] the publish command (`PUBLISH` / `SPUBLISH`).
 * Returns {"restarted", version, newEpoch} (the feed gets `{"epoch": new, "baseVersion": version, "updates": []}`),
 * or {"epoch"} / {"epoch", storedEpoch} when the stored epoch is no longer ARGV[1] (someone restarted
 * it already, or it expired): nothing written.
 */
export const RESTART_SCRIPT = `${EPOCH_LUA}
local key = KEYS[1]
local head = redis.call('HMGET', key, 'epoch', 'version')
if not head[1] then return {'epoch'} end
if head[1] ~= ARGV[1] then return {'epoch', head[1]} end
local version = tonumber(head[2] or '0')
local epoch = epochOf(ARGV[2], head[1])
redis.call('HSET', key, 'epoch', epoch)
redis.call(ARGV[4], ARGV[3], '{"epoch":' .. cjson.encode(epoch) .. ',"baseVersion":' .. version .. ',"updates":[]}')
return {'restarted', version, epoch}
`;

/**
 * confirm: an acknowledgement that writes nothing new (every batch of a round was a resend the store
 * already holds) still needs the store to hold the versions it acknowledges, and with WAIT, the
 * replicas too. Checks the epoch and that the stored version has reached ARGV[2], then rewrites
 * `version` with its own value: a write (replicated) for the WAIT pipelined after the script to
 * count, which covers every earlier write of that master, the original commit included.
 * KEYS[1] codespace key. ARGV[1] epoch, ARGV[2] version.
 * Returns {"ok", storedVersion}, {"behind", storedVersion} (the store lost versions it had), or
 * {"epoch"} / {"epoch", storedEpoch}.
 */
export const CONFIRM_SCRIPT = `
local key = KEYS[1]
local head = redis.call('HMGET', key, 'epoch', 'version')
if not head[1] then return {'epoch'} end
if head[1] ~= ARGV[1] then return {'epoch', head[1]} end
local version = tonumber(head[2] or '0')
if version < tonumber(ARGV[2]) then return {'behind', version} end
redis.call('HSET', key, 'version', head[2])
return {'ok', version}
`;
