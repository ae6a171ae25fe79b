/**
 * In-process CodeStore for a single server process (and tests). Same semantics as RedisStore:
 * TTLs (unref'd timers; expiry fires the onExpired listeners and removes the codespace), a bounded
 * history of the last `historyLength` updates, and a compare-and-set commit.
 */
import { randomUUID } from "node:crypto";
import type { WireUpdate } from "../protocol/events.js";
import {
  codeOf,
  type CodeStore,
  type CommitListener,
  type CommitRequest,
  type CommitResult,
  type ExpiredListener,
  type HistoryResult,
  type Snapshot,
} from "./code-store.js";

/** setTimeout's largest delay (ms); longer TTLs re-arm the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A stored codespace: its state, its history and its TTL. */
interface StoredCodespace {
  epoch: string;
  version: number;
  code: string;
  /** history[i] produced version `version - history.length + 1 + i`. */
  history: WireUpdate[];
  expiresAt: number;
  timer?: NodeJS.Timeout;
}

export interface MemoryStoreOptions {
  /** Number of most recent updates kept for conflict answers and `history()`. */
  historyLength: number;
}

export class MemoryStore implements CodeStore {
  private readonly entries = new Map<string, StoredCodespace>();
  private readonly listeners: ExpiredListener[] = [];
  private readonly watchers = new Map<string, CommitListener>();
  private readonly historyLength: number;
  private closed = false;

  constructor(options: MemoryStoreOptions) {
    this.historyLength = options.historyLength;
  }

  /** See CodeStore.open. Creates `{code: "", version: 0, epoch: <uuid>}` with TTL `ttlSeconds`. */
  async open(codespace: string, ttlSeconds: number): Promise<Snapshot> {
    let entry = this.entries.get(codespace);
    if (!entry) {
      entry = { epoch: randomUUID(), version: 0, code: "", history: [], expiresAt: 0 };
      this.entries.set(codespace, entry);
      this.arm(codespace, entry, ttlSeconds);
    }
    return { epoch: entry.epoch, version: entry.version, code: entry.code };
  }

  /** See CodeStore.watch: the listener is called synchronously inside a successful commit. */
  async watch(codespace: string, listener: CommitListener): Promise<void> {
    this.watchers.set(codespace, listener);
  }

  /** See CodeStore.unwatch. */
  async unwatch(codespace: string): Promise<void> {
    this.watchers.delete(codespace);
  }

  /** See CodeStore.load. */
  async load(codespace: string): Promise<Snapshot | null> {
    const entry = this.entries.get(codespace);
    return entry ? { epoch: entry.epoch, version: entry.version, code: entry.code } : null;
  }

  /** See CodeStore.commit: compare-and-set on `baseVersion`; refreshes the TTL on success. */
  async commit(codespace: string, req: CommitRequest): Promise<CommitResult> {
    const entry = this.entries.get(codespace);
    if (!entry) return { status: "epoch", epoch: null };
    if (entry.epoch !== req.epoch) return { status: "epoch", epoch: entry.epoch };
    if (entry.version !== req.baseVersion) {
      const updates = this.since(entry, req.baseVersion);
      return updates
        ? { status: "conflict", version: entry.version, updates }
        : { status: "conflict", version: entry.version, snapshot: snapshotOf(entry) };
    }
    entry.code = codeOf(req);
    entry.version += req.updates.length;
    entry.history.push(...req.updates.map(copyUpdate));
    if (entry.history.length > this.historyLength) {
      entry.history.splice(0, entry.history.length - this.historyLength);
    }
    this.arm(codespace, entry, req.ttlSeconds);
    this.watchers.get(codespace)?.({
      epoch: entry.epoch,
      baseVersion: req.baseVersion,
      updates: req.updates.map((u, i) => ({ ...copyUpdate(u), sender: req.senders?.[i] ?? "" })),
    });
    return { status: "ok", version: entry.version };
  }

  /** See CodeStore.history. A `version` ahead of the stored one yields `updates: []` with the stored version. */
  async history(codespace: string, epoch: string, version: number): Promise<HistoryResult> {
    const entry = this.entries.get(codespace);
    if (!entry) return { status: "epoch", epoch: null };
    if (entry.epoch !== epoch) return { status: "epoch", epoch: entry.epoch };
    if (version >= entry.version) return { status: "updates", version: entry.version, updates: [] };
    const updates = this.since(entry, version);
    return updates
      ? { status: "updates", version: entry.version, updates }
      : { status: "snapshot", snapshot: snapshotOf(entry) };
  }

  /** Removes a codespace (like Redis DEL) and fires the onExpired listeners if it existed. */
  delete(codespace: string): void {
    const entry = this.entries.get(codespace);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(codespace);
    this.fire(codespace);
  }

  onExpired(listener: ExpiredListener): void {
    this.listeners.push(listener);
  }

  isReady(): boolean {
    return !this.closed;
  }

  /** Clears all timers and data; listeners are not called. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
  }

  /** Copies of the updates after `version`, or undefined when history does not reach back. */
  private since(entry: StoredCodespace, version: number): WireUpdate[] | undefined {
    const first = entry.version - entry.history.length; // version the oldest kept update is based on
    if (version < first || version > entry.version) return undefined;
    return entry.history.slice(version - first).map(copyUpdate);
  }

  private arm(codespace: string, entry: StoredCodespace, ttlSeconds: number): void {
    clearTimeout(entry.timer);
    entry.expiresAt = Date.now() + ttlSeconds * 1000;
    const tick = (): void => {
      const left = entry.expiresAt - Date.now();
      if (left > 0) {
        entry.timer = setTimeout(tick, Math.min(left, MAX_TIMER_MS)).unref();
        return;
      }
      if (this.entries.get(codespace) !== entry) return;
      this.entries.delete(codespace);
      this.fire(codespace);
    };
    tick();
  }

  private fire(codespace: string): void {
    for (const listener of this.listeners) {
      try {
        listener(codespace);
      } catch {
        // A failing listener must not stop the others.
      }
    }
  }
}

/** Copies an update so callers cannot alter stored history (cheaper than structuredClone). */
function copyUpdate(u: WireUpdate): WireUpdate {
  return { clientID: u.clientID, changes: u.changes.map((c) => ({ from: c.from, to: c.to, insert: c.insert })) };
}

function snapshotOf(entry: StoredCodespace): Snapshot {
  return { epoch: entry.epoch, version: entry.version, code: entry.code };
}
