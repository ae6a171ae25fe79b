/**
 * The accept path of one codespace in one process: a queue of `insert_value` batches drained in
 * rounds; every round validates, rebases and deduplicates its batches against the cached document
 * (a Draft) and commits them all with ONE compare-and-set through the store. When another process
 * committed first, the cache catches up from the history the store returns and the round is redone.
 *
 * Broadcasts come from the store's commit feed, not from the committing call: every process hosting
 * the codespace receives every commit (its own included) in the order the store executed them,
 * keeps its cache current with it (so conflicts stay rare) and broadcasts it to its local sockets.
 *
 * Lost commits: a Redis failover can promote a replica that lacks the latest commits (asynchronous
 * replication). The versions then go back within the epoch, and the next commits would reuse them
 * for other text, which clients that saw the lost ones would take for duplicates. A process that
 * sees the store behind what it saw (the feed's versions going back, a commit based on a version the
 * store lacks, an acknowledgement the store cannot confirm) starts a new epoch (`CodeStore.restart`),
 * and every process has its sockets reload (`onEpochChanged`). Versions sent by clients never
 * trigger it: only versions this process received from the store.
 */
import { randomUUID } from "node:crypto";
import type { CodeStore, Commit, CommitSave, Snapshot } from "./store/code-store.js";
import { compareEpochs } from "./store/epoch.js";
import { CodespaceError, InvalidVersionError, StoreUnavailableError, toCodespaceError } from "./errors.js";
import type { InsertValueBroadcast, InsertValuePayload, VersionedUpdate, WireUpdate } from "./protocol/events.js";
import { DocCache } from "./document/doc-cache.js";
import { Draft } from "./document/draft.js";
import { utf8Patch } from "./document/utf8-patch.js";

export interface CodespaceOptions {
  /** Updates kept for rebasing (the store keeps as many). */
  historyLength: number;
  /** UTF-16 code units. */
  maxDocLength: number;
  /** Most rebasing work per batch (see Config.maxRebaseWork). */
  maxRebaseWork?: number;
  /** TTL set at creation and on every commit, seconds. */
  ttlSeconds: number;
  /** Opens the codespace instead of `store.open` (load before edit: persistence/loader.ts). */
  open?(): Promise<Snapshot>;
  /** Set when the codespace is saved to the site: every commit marks it unsaved (CommitRequest.save). */
  save?: CommitSave;
  /** Called for every commit of the feed (any process's), its updates in version order: broadcast them. */
  onCommitted(updates: InsertValueBroadcast[]): void;
  /** Called after this process committed `count` updates (metrics, the onCommit hook, saves). */
  onStored?(count: number, commit: StoredCommit): void;
  /**
   * Called each time a commit of this process lost the compare-and-set to a commit another process
   * made first (the round catches up, rebases and commits again: one more store round trip).
   */
  onConflict?(): void;
  /**
   * The codespace moved to another epoch under this process's sockets (the commit feed announced
   * it): they hold versions of the old one and must reload. Comes from `CodeStore.restart` (the store
   * lost commits: a Redis failover) or from a recreated codespace.
   */
  onEpochChanged?(epoch: string): void;
}

/** A commit this process made: `updates` became versions `version - updates.length + 1 .. version`. */
export interface StoredCommit {
  epoch: string;
  version: number;
  updates: readonly WireUpdate[];
}

/** Result of `pull`: updates after the asked version, or a snapshot. */
export type PullResult = { version: number; updates: VersionedUpdate[] } | { version: number; code: string };

interface Pending {
  batch: InsertValuePayload;
  sender: string;
  resolve(version: number): void;
  reject(err: CodespaceError): void;
}

/** Batches taken into one commit at most; the rest wait for the next round. */
const MAX_BATCHES_PER_ROUND = 256;
/** Compare-and-set attempts per round before giving up with `store_unavailable`. */
const MAX_ATTEMPTS = 50;

export class Codespace {
  private cache: DocCache | null = null;
  private queue: Pending[] = [];
  private draining: Promise<void> | null = null;
  private watching: Promise<void> | null = null;
  /** Base version of this process's commit in flight: its feed message is applied by the round itself. */
  private inFlightBase = -1;
  /** The epoch of the commit feed as this process last saw it (or as `open` read it first). */
  private feedEpoch: string | undefined;
  /** Highest version the commit feed delivered in `feedEpoch` (-1: none yet). */
  private feedVersion = -1;
  /** The update the feed delivered as `feedVersion` (kept to check it against the store, `verifyFeed`). */
  private feedLast: WireUpdate | undefined;

  constructor(
    readonly id: string,
    private readonly store: CodeStore,
    private readonly options: CodespaceOptions,
  ) {}

  /**
   * Opens (or creates) the codespace in the store and returns its current state, after subscribing to
   * its commit feed (so no commit after the snapshot can be missed). @throws StoreUnavailableError
   */
  async open(): Promise<Snapshot> {
    this.watching ??= this.store.watch(this.id, (commit) => this.receive(commit), () => void this.verifyFeed()).catch((err: unknown) => {
      this.watching = null;
      throw err;
    });
    await this.watching;
    const snapshot = await (this.options.open ? this.options.open() : this.store.open(this.id, this.options.ttlSeconds));
    if (this.feedEpoch === undefined) {
      this.feedEpoch = snapshot.epoch;
    } else if (compareEpochs(snapshot.epoch, this.feedEpoch) > 0 || (snapshot.epoch !== this.feedEpoch && compareEpochs(snapshot.epoch, this.feedEpoch) === 0)) {
      // a newer epoch than the feed has told this process of (its announcement is still on the way):
      // the sockets already here hold the old one and reload now; the announcement then finds the
      // epoch known and changes nothing. (Two epochs that cannot be ordered count as newer.)
      this.moveTo(snapshot.epoch, -1);
    }
    return snapshot;
  }

  /** Stops the commit feed (the registry dropped this codespace). */
  async dispose(): Promise<void> {
    this.watching = null;
    this.cache = null;
    await this.store.unwatch(this.id);
  }

  /** A commit from the feed: keep the cache current, then broadcast to this process's sockets. */
  private receive(commit: Commit): void {
    const top = commit.baseVersion + commit.updates.length;
    if (this.feedEpoch !== undefined && commit.epoch !== this.feedEpoch) {
      // an older epoch's commit still on its way (a socket's open read the newer one first): stale
      if (compareEpochs(commit.epoch, this.feedEpoch) < 0) return;
      // a new epoch: the local sockets hold versions of the old one; they reload (nothing broadcast)
      this.moveTo(commit.epoch, top);
      return;
    }
    if (commit.baseVersion < this.feedVersion) {
      // the store's versions went back within the epoch: it lost commits this process saw. Its
      // versions are not broadcast (clients would drop them as duplicates of the lost ones).
      this.cache = null;
      void this.restart(commit.epoch);
      return;
    }
    this.feedEpoch = commit.epoch;
    this.feedVersion = top;
    if (commit.updates.length === 0) return; // a restart's announcement, already known here
    this.feedLast = commit.updates[commit.updates.length - 1];
    const cache = this.cache;
    if (cache && commit.epoch !== cache.epoch) this.cache = null;
    else if (cache && commit.baseVersion !== this.inFlightBase) {
      try {
        cache.catchUp(commit.baseVersion, commit.updates); // a gap (false) is closed by the next conflict
      } catch {
        this.cache = null;
      }
    }
    this.options.onCommitted(
      commit.updates.map((u, i) => ({ version: commit.baseVersion + i + 1, clientID: u.clientID, sender: u.sender, changes: u.changes })),
    );
  }

  /**
   * Queues one shape-checked `insert_value` batch; resolves with the version after it once it is
   * committed (its broadcast comes from the commit feed, before or after this resolves).
   * @throws CodespaceError: invalid_version, version_too_old, invalid_payload, doc_too_large, store_unavailable
   */
  submit(batch: InsertValuePayload, sender: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queue.push({ batch, sender, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves when the queue is empty and nothing is being committed. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * The feed's subscription was re-established (a reconnection, a master's failover): commits made
   * meanwhile were not delivered here, and if the store lost the ones this process's sockets saw,
   * the versions after them may already be reused without the feed showing it. Checks the update
   * the feed last delivered against the store's history at that version: the store behind it, or
   * another update there, means lost commits (a restart); a newer epoch in the store, a reload.
   */
  private async verifyFeed(): Promise<void> {
    const epoch = this.feedEpoch, seen = this.feedVersion, last = this.feedLast;
    if (epoch === undefined || seen < 1 || !last) return;
    let res;
    try {
      res = await this.store.history(this.id, epoch, seen - 1);
    } catch {
      return; // the store is down again: the next resubscription checks again
    }
    if (epoch !== this.feedEpoch) return; // moved on meanwhile
    if (res.status === "epoch") {
      if (res.epoch !== null && compareEpochs(res.epoch, epoch) > 0) this.moveTo(res.epoch, -1);
      return;
    }
    const storedVersion = res.status === "snapshot" ? res.snapshot.version : res.version;
    const stored = res.status === "updates" ? res.updates[0] : undefined;
    const same = stored !== undefined && stored.clientID === last.clientID && JSON.stringify(stored.changes) === JSON.stringify(last.changes);
    // behind what was seen, or another update at that version (history that no longer reaches back
    // cannot be compared: the versions alone decide)
    if (storedVersion < seen || (res.status === "updates" && !same)) {
      this.cache = null;
      await this.restart(epoch);
    }
  }

  /** The codespace moved to `epoch` under this process's sockets: they reload (`onEpochChanged`). */
  private moveTo(epoch: string, version: number): void {
    this.feedEpoch = epoch;
    this.feedVersion = version;
    this.feedLast = undefined;
    this.cache = null;
    this.options.onEpochChanged?.(epoch);
  }

  /**
   * The store lost commits of `epoch`: starts a new epoch (CodeStore.restart; another process may
   * have done it already, then nothing is written). Its feed message makes every process, this one
   * included, have its sockets reload (`onEpochChanged`). A store that is down is left alone: the
   * next observation tries again.
   */
  private async restart(epoch: string): Promise<void> {
    try {
      await this.store.restart(this.id, epoch, randomUUID());
    } catch {
      // store unavailable: the clients' next batches or the next feed message notice again
    }
  }

  /** Starts a new epoch (see `restart`), drops the cache and refuses the round: the clients reload. @throws InvalidVersionError */
  private async restartAndReject(epoch: string): Promise<never> {
    this.cache = null;
    await this.restart(epoch);
    throw new InvalidVersionError("the store lost recent updates of this codespace (a Redis failover); reload it");
  }

  /** Forgets the cached document (after expiry); queued batches will reload it. */
  invalidate(): void {
    this.cache = null;
  }

  /**
   * Updates after `version`, read from the store (the truth across processes).
   * @throws InvalidVersionError (epoch mismatch, version ahead), StoreUnavailableError
   */
  async pull(epoch: string, version: number): Promise<PullResult> {
    const res = await this.store.history(this.id, epoch, version);
    if (res.status === "epoch") throw new InvalidVersionError("epoch mismatch: the codespace was recreated or expired; reload it");
    if (res.status === "snapshot") {
      if (res.snapshot.epoch !== epoch) throw new InvalidVersionError("epoch mismatch: reload the codespace");
      if (version > res.snapshot.version) throw new InvalidVersionError(`version ${version} is ahead of the codespace (${res.snapshot.version})`);
      return { version: res.snapshot.version, code: res.snapshot.code };
    }
    if (version > res.version) throw new InvalidVersionError(`version ${version} is ahead of the codespace (${res.version})`);
    return { version: res.version, updates: res.updates.map((u, i) => ({ version: version + i + 1, clientID: u.clientID, changes: u.changes })) };
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const round = this.queue.splice(0, MAX_BATCHES_PER_ROUND);
        try {
          await this.commitRound(round);
        } catch (err) {
          const e = toCodespaceError(err);
          for (const p of round) p.reject(e);
        }
        // More rounds queued: let the event loop run first (socket writes of the broadcasts just made,
        // timers, incoming packets). An in-memory store's commit never leaves the microtask queue, so
        // without this a burst of rounds would hold every other socket behind it.
        if (this.queue.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.draining = null;
    }
  }

  /** Loads the cache if absent, reloads it when a batch knows another epoch, catches up when one is ahead. */
  private async prepareCache(round: readonly Pending[]): Promise<DocCache> {
    let cache = this.cache;
    if (!cache || round.some((p) => p.batch.epoch !== cache!.epoch)) {
      // load, never open: an edit must not recreate an expired or deleted codespace
      const snapshot = await this.store.load(this.id);
      if (!snapshot) throw new InvalidVersionError("the codespace expired or was deleted; reload it");
      cache = this.cache = new DocCache(snapshot, this.options.historyLength);
    }
    const maxVersion = Math.max(...round.map((p) => p.batch.version));
    if (maxVersion > cache.version) {
      const from = cache.version;
      const res = await this.store.history(this.id, cache.epoch, from);
      if (res.status === "epoch") return cache; // the commit reports it
      if (res.status === "snapshot") cache = this.cache = new DocCache(res.snapshot, this.options.historyLength);
      else this.catchUp(cache, from, res.updates);
    }
    const minVersion = Math.min(...round.map((p) => p.batch.version));
    if (minVersion < cache.oldestVersion) {
      const res = await this.store.history(this.id, cache.epoch, minVersion);
      if (res.status === "updates") cache.extendBack(minVersion, res.updates); // else too old: the draft says so
    }
    return cache;
  }

  /** Applies updates other processes committed; an inconsistent cache is dropped and reloaded. */
  private catchUp(cache: DocCache, base: number, updates: readonly WireUpdate[]): void {
    try {
      if (!cache.catchUp(base, updates)) throw new RangeError("gap");
    } catch {
      this.cache = null;
      throw new StoreUnavailableError("the cached codespace was inconsistent with the store; resend");
    }
  }

  private async commitRound(round: Pending[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cache = await this.prepareCache(round);
      const draft = new Draft(cache, this.options.maxDocLength, this.options.maxRebaseWork);
      const outcomes = round.map((p) => {
        try {
          return draft.apply(p.batch, p.sender);
        } catch (err) {
          return toCodespaceError(err);
        }
      });
      if (draft.updates.length > 0) {
        const base = cache.version;
        this.inFlightBase = base;
        const updates = draft.updates.map((u) => ({ clientID: u.clientID, changes: u.wire }));
        const res = await this.store.commit(this.id, {
          epoch: cache.epoch,
          baseVersion: base,
          code: () => draft.doc.toString(),
          doc: () => draft.doc,
          patch: () => utf8Patch(cache.doc, draft.composed()),
          updates,
          senders: draft.senders,
          ttlSeconds: this.options.ttlSeconds,
          save: this.options.save,
        }).finally(() => (this.inFlightBase = -1));
        if (res.status === "epoch") {
          this.cache = null;
          throw new InvalidVersionError("the codespace expired or was recreated; reload it");
        }
        if (res.status === "conflict" && "snapshot" in res && res.snapshot.epoch === cache.epoch && res.snapshot.version < base) {
          // the cache holds versions the store does not: it lost commits (see the file's comment)
          await this.restartAndReject(cache.epoch);
        }
        if (res.status === "conflict") {
          this.options.onConflict?.();
          if ("snapshot" in res) this.cache = new DocCache(res.snapshot, this.options.historyLength);
          else this.catchUp(cache, base, res.updates);
          continue;
        }
        // the feed skipped this commit (inFlightBase), so the cache is still at `base`
        if (cache.version === base) cache.append(draft.updates, draft.doc);
        else if (this.cache === cache) this.cache = null; // cannot happen; never keep a doubtful cache
        this.options.onStored?.(draft.updates.length, { epoch: cache.epoch, version: res.version, updates });
      }
      if (draft.updates.length === 0 && outcomes.some((o) => typeof o === "number") && this.store.confirm) {
        // only resends of committed updates: acknowledge what the store (and its replicas) hold
        const confirmed = await this.store.confirm(this.id, cache.epoch, cache.version);
        if (confirmed.status === "behind") await this.restartAndReject(cache.epoch);
        if (confirmed.status === "epoch") {
          this.cache = null;
          throw new InvalidVersionError("the codespace expired or was recreated; reload it");
        }
      }
      round.forEach((p, i) => {
        const o = outcomes[i]!;
        if (typeof o === "number") p.resolve(o);
        else p.reject(o);
      });
      return;
    }
    throw new StoreUnavailableError("too much contention on this codespace; nothing was applied, resend");
  }
}
