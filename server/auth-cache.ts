/**
 * A short-lived cache of successful site-API token checks (AUTH_CACHE_MS, default off), so a
 * reconnect storm does not turn into one API call per socket.
 *
 * - Keys are SHA-256 digests of the tokens: the raw tokens are not kept in memory longer than a check.
 * - Only successful checks are cached; a refusal or a failure is asked again next time.
 * - Bounded: at most `maxEntries`; the oldest entry is dropped first. Expired entries are dropped
 *   when read or when they reach the front. No timers.
 */
import { createHash } from "node:crypto";
import type { SocketAuth } from "./auth.js";

interface Entry {
  auth: SocketAuth;
  expiresAt: number;
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export class AuthCache {
  /** Insertion-ordered: the first entry is the oldest. */
  private readonly entries = new Map<string, Entry>();

  /**
   * @param ttlMs how long an entry is reused, milliseconds (> 0)
   * @param maxEntries most entries kept
   * @param now clock, milliseconds
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Entries held (expired ones not yet dropped included). */
  get size(): number {
    return this.entries.size;
  }

  /** The cached result for `token`, or undefined (absent or expired). */
  get(token: string): SocketAuth | undefined {
    const key = digest(token);
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return { ...e.auth };
  }

  /** Remembers a successful check for `ttlMs`. */
  set(token: string, auth: SocketAuth): void {
    const key = digest(token);
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { auth: { ...auth }, expiresAt: now + this.ttlMs });
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && e.expiresAt > now) break;
      this.entries.delete(k);
    }
  }
}
