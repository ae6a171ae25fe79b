/**
 * Per-socket rate limit of the write events (`insert_value`, `create_selection`), with
 * rate-limiter-flexible's in-memory limiter keyed by socket id (a socket lives in one process, so
 * nothing needs sharing).
 *
 * - Each event costs one point; RATE_LIMIT_EVENTS points per RATE_LIMIT_WINDOW_MS. Over the limit the
 *   event is refused with `rate_limited` and changes nothing.
 * - Each refusal is a strike; RATE_LIMIT_DISCONNECT_AFTER strikes within STRIKE_WINDOW_MS mean abuse:
 *   the caller disconnects the socket (0 disables that).
 * - `forget(socketId)` on disconnect drops both entries and their timers.
 *
 * Used through the library's public API only (`consume`, `delete`); `size` counts the sockets this
 * class has counters for, from its own bookkeeping.
 */
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { Config } from "./config.js";

/** Window in which refusals count toward a disconnect, milliseconds. */
export const STRIKE_WINDOW_MS = 60_000;

export type Verdict = "ok" | "limited" | "abuse";

export class SocketRateLimiter {
  private readonly events: RateLimiterMemory;
  private readonly strikes: RateLimiterMemory | undefined;
  /** Sockets that consumed a point and were not forgotten yet. */
  private readonly counted = new Set<string>();

  constructor(config: Pick<Config, "rateLimitEvents" | "rateLimitWindowMs" | "rateLimitDisconnectAfter">) {
    this.events = new RateLimiterMemory({ points: config.rateLimitEvents, duration: config.rateLimitWindowMs / 1000 });
    this.strikes =
      config.rateLimitDisconnectAfter > 0
        ? new RateLimiterMemory({ points: config.rateLimitDisconnectAfter - 1, duration: STRIKE_WINDOW_MS / 1000 })
        : undefined;
  }

  /** Takes one point for `socketId`: `ok`, `limited` (refuse the event) or `abuse` (refuse and disconnect). */
  async consume(socketId: string): Promise<Verdict> {
    this.counted.add(socketId);
    try {
      await this.events.consume(socketId);
      return "ok";
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
    }
    if (!this.strikes) return "limited";
    try {
      await this.strikes.consume(socketId);
      return "limited";
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      return "abuse";
    }
  }

  /** Sockets with counters not yet forgotten (read-only; tests and diagnostics). */
  get size(): number {
    return this.counted.size;
  }

  /** Drops the socket's counters (and their expiry timers). */
  forget(socketId: string): void {
    this.counted.delete(socketId);
    void this.events.delete(socketId);
    void this.strikes?.delete(socketId);
  }
}
