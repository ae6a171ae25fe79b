/**
 * Epochs (docs/integration.md, "Versions, epochs and idempotency"): the name of one incarnation of a
 * codespace in the store. An epoch is `<creation time>-<random id>`: the time in milliseconds, 15
 * digits with leading zeros, then a random UUID. Comparing two epochs as strings therefore orders
 * them by creation, which lets a site tell a late save of an old incarnation from a save of a newer
 * one (a save whose epoch is lower than the one it holds is stale). RedisStore takes the time from
 * Redis's clock inside the script that creates the epoch (EPOCH_LUA), the memory stores from the
 * process's.
 */
import { randomUUID } from "node:crypto";

/** Digits of an epoch's time part. */
const TIME_DIGITS = 15;

/** A new epoch made at `nowMs`, with the random id `id`. */
export function newEpoch(nowMs: number = Date.now(), id: string = randomUUID()): string {
  return `${String(Math.floor(nowMs)).padStart(TIME_DIGITS, "0")}-${id}`;
}

/**
 * Lua: `local function epochOf(id)` returning `<Redis TIME in ms, 15 digits>-<id>` (id: a random UUID
 * from the caller), the same shape as `newEpoch`.
 */
export const EPOCH_LUA = `
local function epochOf(id)
  local t = redis.call('TIME')
  return string.format('%0${TIME_DIGITS}d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) .. '-' .. id
end
`;
