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

/** The time part of an epoch in this format, ms; undefined for an epoch from before it (a plain UUID). */
export function epochTime(epoch: string): number | undefined {
  return epoch.length > TIME_DIGITS + 1 && epoch[TIME_DIGITS] === "-" && /^\d+$/.test(epoch.slice(0, TIME_DIGITS)) ? Number(epoch.slice(0, TIME_DIGITS)) : undefined;
}

/**
 * Which epoch is newer: > 0 when `a` is, < 0 when `b` is, 0 when they are equal or cannot be ordered
 * (two plain UUIDs from before this format). A plain UUID is older than any epoch in this format.
 */
export function compareEpochs(a: string, b: string): number {
  if (a === b) return 0;
  const ta = epochTime(a), tb = epochTime(b);
  if (ta === undefined && tb === undefined) return 0;
  if (ta === undefined) return -1;
  if (tb === undefined) return 1;
  return a < b ? -1 : 1;
}

/**
 * A new epoch that sorts after `previous`: made at max(`nowMs`, previous's time + 1), so that a clock
 * that went back (a failover to another machine) never makes a restart look older than what it
 * replaces.
 */
export function nextEpoch(previous: string, nowMs: number = Date.now(), id?: string): string {
  return newEpoch(Math.max(nowMs, (epochTime(previous) ?? 0) + 1), id);
}

/**
 * Lua: `local function epochOf(id, previous)` returning `<ms, 15 digits>-<id>` (id: a random UUID from
 * the caller), the same shape as `newEpoch`: Redis TIME, or one more than `previous`'s time when that
 * is later (`previous` may be nil or an epoch without a time).
 */
export const EPOCH_LUA = `
local function epochOf(id, previous)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if previous and string.sub(previous, ${TIME_DIGITS + 1}, ${TIME_DIGITS + 1}) == '-' then
    local before = tonumber(string.sub(previous, 1, ${TIME_DIGITS}))
    if before and before >= now then now = before + 1 end
  end
  return string.format('%0${TIME_DIGITS}d', now) .. '-' .. id
end
`;
