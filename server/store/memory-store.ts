/**
 * In-process CodeStore for a single server process (and tests). Same semantics as RedisStore:
 * TTLs (unref'd timers; expiry fires the onExpired listeners and removes the codespace), a bounded
 * history of the last `historyLength` updates, and a compare-and-set commit.
 */
import { newEpoch, nextEpoch } from "./epoch.js";
import type { Text } from "@codemirror/state";
import type { WireUpdate } from "../protocol/events.js";
import {
  codeOf,
  type CodeStore,
  type CommitListener,
  type CommitRequest,
  type ClaimOptions,
  type ClaimResult,
  type CommitResult,
  type ExpiredListener,
  type HistoryResult,
  type RestartResult,
  type Snapshot,
} from "./code-store.js";
import type { SavedCodespace } from "./data-dir.js";

/** setTimeout's largest delay (ms); longer TTLs re-arm the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A stored codespace: its state, its history and its TTL. The text is kept as the committer's
 * CodeMirror `Text` (`doc`, shared and immutable) or as a string (`code`); the string is built from
 * `doc` only when it is read (codeOfEntry), and then replaces it until the next commit.
 */
interface StoredCodespace {
  epoch: string;
  version: number;
  code?: string;
  doc?: Text;
  /** history[i] produced version `version - history.length + 1 + i`. */
  history: WireUpdate[];
  expiresAt: number;
  timer?: NodeJS.Timeout;
  /** When `timer` fires (Date.now() ms). */
  timerDue?: number;
  /** Save state (see SaveState and store/save-scripts.ts): times in ms. */
  dirtySince?: number;
  touchedAt?: number;
  ttlSeconds?: number;
  savedVersion?: number;
  leaseOwner?: string;
  leaseUntil?: number;
  attempts?: number;
}

export interface MemoryStoreOptions {
  /** Number of most recent updates kept for conflict answers and `history()`. */
  historyLength: number;
  /**
   * Called (synchronously) with the codespace id whenever its stored state changes: created,
   * committed to, expired or deleted (PersistentMemoryStore marks it dirty).
   */
  onChange?: (codespace: string) => void;
}

export class MemoryStore implements CodeStore {
  private readonly entries = new Map<string, StoredCodespace>();
  private readonly listeners: ExpiredListener[] = [];
  private readonly watchers = new Map<string, CommitListener>();
  private readonly historyLength: number;
  private readonly onChange: (codespace: string) => void;
  private closed = false;

  constructor(options: MemoryStoreOptions) {
    this.historyLength = options.historyLength;
    this.onChange = options.onChange ?? (() => {});
  }

  /**
   * The whole stored state of a codespace as `SavedCodespace` JSON, with its expiry time, or
   * undefined when it does not exist (for PersistentMemoryStore). Serialized at once from the live
   * entry: no copy of the history is made.
   */
  savedJson(codespace: string): string | undefined {
    const e = this.entries.get(codespace);
    if (!e) return undefined;
    const rec: SavedCodespace = { codespace, epoch: e.epoch, version: e.version, code: codeOfEntry(e), history: e.history, expiresAt: e.expiresAt };
    // durable-save bookkeeping (not the lease: a restarted process holds none)
    if (e.dirtySince !== undefined || e.savedVersion !== undefined) {
      rec.save = { dirtySince: e.dirtySince, touchedAt: e.touchedAt, ttlSeconds: e.ttlSeconds, savedVersion: e.savedVersion, attempts: e.attempts };
    }
    return JSON.stringify(rec);
  }

  /**
   * Puts back a saved codespace (at start, before any client): epoch, version, code, history and
   * the remaining TTL. Returns false, keeping nothing, when its TTL already ran out.
   */
  restore(rec: SavedCodespace): boolean {
    const left = rec.expiresAt - Date.now();
    if (left <= 0) return false;
    const history = rec.history.slice(-this.historyLength).map(copyUpdate);
    const entry: StoredCodespace = { epoch: rec.epoch, version: rec.version, code: rec.code, history, expiresAt: 0, ...rec.save };
    clearTimeout(this.entries.get(rec.codespace)?.timer);
    this.entries.set(rec.codespace, entry);
    this.arm(rec.codespace, entry, left / 1000);
    return true;
  }

  /** Ids of every stored codespace. */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** See CodeStore.open. Creates `{code: "", version: 0, epoch: <uuid>}` with TTL `ttlSeconds`. */
  async open(codespace: string, ttlSeconds: number, initialCode = ""): Promise<Snapshot> {
    let entry = this.entries.get(codespace);
    if (!entry) {
      entry = { epoch: newEpoch(), version: 0, code: initialCode, history: [], expiresAt: 0 };
      this.entries.set(codespace, entry);
      this.arm(codespace, entry, ttlSeconds);
      this.onChange(codespace);
    }
    return snapshotOf(entry);
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
    return entry ? snapshotOf(entry) : null;
  }

  /** See CodeStore.exists. */
  async exists(codespace: string): Promise<boolean> {
    return this.entries.has(codespace);
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
    // keep the committer's Text when it has one: no O(document) string per commit
    if (req.doc) {
      entry.doc = req.doc();
      entry.code = undefined;
    } else {
      entry.code = codeOf(req);
      entry.doc = undefined;
    }
    entry.version += req.updates.length;
    // kept as they are: a committed update is never changed afterwards (CommitRequest.updates)
    entry.history.push(...req.updates);
    if (entry.history.length > this.historyLength) {
      entry.history.splice(0, entry.history.length - this.historyLength);
    }
    if (req.save) {
      const now = Date.now();
      entry.dirtySince ??= now;
      entry.touchedAt = now;
      entry.ttlSeconds = req.ttlSeconds;
      this.arm(codespace, entry, Math.max(req.ttlSeconds, req.save.retentionSeconds));
    } else {
      this.arm(codespace, entry, req.ttlSeconds);
    }
    this.onChange(codespace);
    this.watchers.get(codespace)?.({
      epoch: entry.epoch,
      baseVersion: req.baseVersion,
      updates: req.updates.map((u, i) => ({ clientID: u.clientID, changes: u.changes, sender: req.senders?.[i] ?? "" })),
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

  /** See CodeStore.restart (a memory store loses nothing, but a DATA_DIR restore can go back). */
  async restart(codespace: string, epoch: string, id: string): Promise<RestartResult> {
    const entry = this.entries.get(codespace);
    if (!entry) return { status: "epoch", epoch: null };
    if (entry.epoch !== epoch) return { status: "epoch", epoch: entry.epoch };
    entry.epoch = nextEpoch(entry.epoch, Date.now(), id);
    this.onChange(codespace);
    this.watchers.get(codespace)?.({ epoch: entry.epoch, baseVersion: entry.version, updates: [] });
    return { status: "restarted", version: entry.version, epoch: entry.epoch };
  }

  /** See SaveState.dueSaves (no index: the unsaved entries without a live lease; claimSave checks the debounce). */
  async dueSaves(limit: number): Promise<string[]> {
    const now = Date.now();
    const out: string[] = [];
    for (const [id, e] of this.entries) {
      if (out.length >= limit) break;
      if (e.dirtySince !== undefined && (e.leaseUntil ?? 0) <= now) out.push(id);
    }
    return out;
  }

  /** See SaveState.claimSave (same rules as the claim script). */
  async claimSave(codespace: string, o: ClaimOptions): Promise<ClaimResult> {
    const e = this.entries.get(codespace);
    if (!e) return { status: "gone" };
    if (e.dirtySince === undefined) return { status: "clean" };
    const now = Date.now();
    const leaseUntil = e.leaseUntil ?? 0;
    if (e.leaseOwner !== undefined && leaseUntil > now && (e.leaseOwner !== o.owner || !o.force)) return { status: "busy", until: leaseUntil };
    if (!o.force) {
      const due = Math.min((e.touchedAt ?? e.dirtySince) + o.debounceMs, e.dirtySince + o.maxWaitMs);
      if (due > now) return { status: "busy", until: due };
    }
    e.leaseOwner = o.owner;
    e.leaseUntil = now + o.leaseMs;
    return { status: "claimed", epoch: e.epoch, version: e.version, code: codeOfEntry(e), dirtySince: e.dirtySince, now, attempts: e.attempts ?? 0 };
  }

  /** See SaveState.settleSave (same rules as the settle script). */
  async settleSave(
    codespace: string,
    owner: string,
    x: { epoch: string; version: number; claimedAt: number },
  ): Promise<"clean" | "dirty" | "lost"> {
    const e = this.entries.get(codespace);
    if (!e || e.epoch !== x.epoch) return "lost";
    e.savedVersion = Math.max(e.savedVersion ?? -1, x.version);
    if (e.leaseOwner === owner) e.leaseOwner = e.leaseUntil = e.attempts = undefined;
    if (e.version <= x.version) {
      e.dirtySince = e.attempts = undefined;
      if (e.ttlSeconds !== undefined) {
        const left = (e.touchedAt ?? Date.now()) + e.ttlSeconds * 1000 - Date.now();
        this.arm(codespace, e, Math.max(left, 1) / 1000);
      }
      return "clean";
    }
    e.dirtySince = x.claimedAt;
    return "dirty";
  }

  /** See SaveState.deferSave. */
  async deferSave(codespace: string, owner: string, delayMs: number): Promise<void> {
    const e = this.entries.get(codespace);
    if (!e || e.leaseOwner !== owner) return;
    e.leaseUntil = Date.now() + delayMs;
    e.attempts = (e.attempts ?? 0) + 1;
  }

  /** See SaveState.releaseSave. */
  async releaseSave(codespace: string, owner: string): Promise<void> {
    const e = this.entries.get(codespace);
    if (e?.leaseOwner === owner) e.leaseOwner = e.leaseUntil = undefined;
  }

  /** See SaveState.unsavedCount. */
  async unsavedCount(): Promise<number> {
    let n = 0;
    for (const e of this.entries.values()) if (e.dirtySince !== undefined) n++;
    return n;
  }

  /** See SaveState.unsaved (no index to repair here). */
  async unsaved(codespaces: readonly string[]): Promise<string[]> {
    return codespaces.filter((id) => this.entries.get(id)?.dirtySince !== undefined);
  }

  /** Removes a codespace (like Redis DEL) and fires the onExpired listeners if it existed. */
  delete(codespace: string): void {
    const entry = this.entries.get(codespace);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(codespace);
    this.onChange(codespace);
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
    entry.expiresAt = Date.now() + ttlSeconds * 1000;
    // A pending timer due no later than the new expiry stays: when it fires it re-arms for what is
    // left (no timer per commit).
    if (entry.timer && entry.timerDue! <= entry.expiresAt) return;
    clearTimeout(entry.timer);
    this.expireOrRearm(codespace, entry);
  }

  /** Expires the entry if its time has come, else sets its timer for the time left. */
  private expireOrRearm(codespace: string, entry: StoredCodespace): void {
    const left = entry.expiresAt - Date.now();
    if (left > 0) {
      const delay = Math.min(left, MAX_TIMER_MS);
      entry.timerDue = Date.now() + delay;
      entry.timer = setTimeout(() => this.expireOrRearm(codespace, entry), delay).unref();
      return;
    }
    entry.timer = undefined;
    if (this.entries.get(codespace) !== entry) return;
    this.entries.delete(codespace);
    this.onChange(codespace);
    this.fire(codespace);
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

/** The entry's full text as a string, built from its `doc` on first read after a commit. */
function codeOfEntry(entry: StoredCodespace): string {
  if (entry.code === undefined) {
    entry.code = entry.doc!.toString();
    entry.doc = undefined; // keep one copy of the text, not both
  }
  return entry.code;
}

function snapshotOf(entry: StoredCodespace): Snapshot {
  return { epoch: entry.epoch, version: entry.version, code: codeOfEntry(entry) };
}
