/**
 * The accept path of one codespace in one process: a queue of `insert_value` batches drained in
 * rounds; every round validates, rebases and deduplicates its batches against the cached document
 * (a Draft) and commits them all with ONE compare-and-set through the store. When another process
 * committed first, the cache catches up from the history the store returns and the round is redone.
 * Broadcasts leave only after their commit; acks only after their broadcasts.
 */
import type { CodeStore, Snapshot } from "./store/code-store.js";
import { CodespaceError, InvalidVersionError, StoreUnavailableError, toCodespaceError } from "./errors.js";
import type { InsertValuePayload, VersionedUpdate, WireChange, WireUpdate } from "./protocol/events.js";
import { DocCache, insertsAreAscii } from "./document/doc-cache.js";
import { Draft } from "./document/draft.js";

/** An accepted update as broadcast: `version` is the version after it. */
export interface AcceptedUpdate {
  version: number;
  clientID: string;
  sender: string;
  changes: WireChange[];
}

export interface CodespaceOptions {
  /** Updates kept for rebasing (the store keeps as many). */
  historyLength: number;
  /** UTF-16 code units. */
  maxDocLength: number;
  /** TTL set at creation and on every commit, seconds. */
  ttlSeconds: number;
  /** Called after each successful commit with its updates in version order. */
  onAccepted(updates: AcceptedUpdate[]): void;
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

  constructor(
    readonly id: string,
    private readonly store: CodeStore,
    private readonly options: CodespaceOptions,
  ) {}

  /** Opens (or creates) the codespace in the store and returns its current state. @throws StoreUnavailableError */
  async open(): Promise<Snapshot> {
    return this.store.open(this.id, this.options.ttlSeconds);
  }

  /**
   * Queues one shape-checked `insert_value` batch; resolves with the version after it once it is
   * committed and broadcast.
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
      const res = await this.store.history(this.id, cache.epoch, cache.version);
      if (res.status === "epoch") return cache; // the commit reports it
      if (res.status === "snapshot") cache = this.cache = new DocCache(res.snapshot, this.options.historyLength);
      else this.catchUp(cache, res.updates);
    }
    const minVersion = Math.min(...round.map((p) => p.batch.version));
    if (minVersion < cache.oldestVersion) {
      const res = await this.store.history(this.id, cache.epoch, minVersion);
      if (res.status === "updates") cache.extendBack(minVersion, res.updates); // else too old: the draft says so
    }
    return cache;
  }

  /** Applies updates other processes committed; an inconsistent cache is dropped and reloaded. */
  private catchUp(cache: DocCache, updates: readonly WireUpdate[]): void {
    try {
      cache.catchUp(updates);
    } catch {
      this.cache = null;
      throw new StoreUnavailableError("the cached codespace was inconsistent with the store; resend");
    }
  }

  private async commitRound(round: Pending[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cache = await this.prepareCache(round);
      const draft = new Draft(cache, this.options.maxDocLength);
      const outcomes = round.map((p) => {
        try {
          return draft.apply(p.batch, p.sender);
        } catch (err) {
          return toCodespaceError(err);
        }
      });
      if (draft.entries.length > 0) {
        const res = await this.store.commit(this.id, {
          epoch: cache.epoch,
          baseVersion: cache.version,
          code: () => draft.doc.toString(),
          length: draft.doc.length,
          ascii: cache.ascii && draft.entries.every((e) => insertsAreAscii(e.wire)),
          updates: draft.entries.map((e) => ({ clientID: e.clientID, changes: e.wire })),
          ttlSeconds: this.options.ttlSeconds,
        });
        if (res.status === "epoch") {
          this.cache = null;
          throw new InvalidVersionError("the codespace expired or was recreated; reload it");
        }
        if (res.status === "conflict") {
          this.catchUpAfterConflict(cache, res);
          continue;
        }
        const base = cache.version;
        cache.append(draft.entries, draft.doc);
        this.options.onAccepted(
          draft.entries.map((e, i) => ({ version: base + i + 1, clientID: e.clientID, sender: e.sender, changes: e.wire })),
        );
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

  private catchUpAfterConflict(cache: DocCache, res: { version: number } & ({ updates: WireUpdate[] } | { snapshot: Snapshot })): void {
    if ("snapshot" in res) this.cache = new DocCache(res.snapshot, this.options.historyLength);
    else this.catchUp(cache, res.updates);
  }
}
