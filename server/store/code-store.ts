/**
 * The code store: the narrow seam between the accept path and where codespaces live
 * (in-memory for one process, Redis for many). Both implementations have the same semantics;
 * `test/store.test.ts` runs one suite against each.
 */
import type { Text } from "@codemirror/state";
import type { WireUpdate } from "../protocol/events.js";

/** A codespace's state at one version. `code` is the full text (UTF-16 string). */
export interface Snapshot {
  epoch: string;
  version: number;
  code: string;
}

/** The full text of a commit request, building it if it was passed lazily. */
export function codeOf(req: Pick<CommitRequest, "code">): string {
  return typeof req.code === "function" ? req.code() : req.code;
}

/**
 * A commit's changes in UTF-8 byte offsets of the text at the commit's base version, sorted and
 * non-overlapping; `bytes` is the UTF-8 length of the resulting text, `insertBytes` that of `insert`.
 */
export interface Utf8Patch {
  bytes: number;
  changes: { from: number; to: number; insert: string; insertBytes: number }[];
}

export interface CommitRequest {
  /** Epoch the commit is based on; a different (or missing) stored epoch fails with `epoch`. */
  epoch: string;
  /** Version the first update is based on; must equal the stored version (compare-and-set). */
  baseVersion: number;
  /** Full text after all `updates` (a function: built only when the store needs it). */
  code: string | (() => string);
  /**
   * The same full text as a CodeMirror `Text` (built only when called; the accept path passes the
   * draft's document, so this costs nothing): a store that keeps documents in memory (MemoryStore)
   * keeps it and turns it into a string only when `code` is read (snapshot, DATA_DIR write, save),
   * so a commit costs the size of its changes, not of the document.
   */
  doc?: () => Text;
  /**
   * The updates' combined effect on the text at `baseVersion` in UTF-8 bytes (built only when
   * called): a store that keeps UTF-8 may apply it instead of writing `code`, so a commit costs the
   * size of its changes, not of the document (RedisStore does, in its Lua script, and falls back to
   * `code` when the stored text does not have the expected length).
   */
  patch?: () => Utf8Patch;
  /**
   * Updates in order; update i becomes version `baseVersion + i + 1`. The store may keep these
   * objects (the in-memory store does, as its history): never change them after the commit.
   */
  updates: readonly WireUpdate[];
  /** Socket id of each update's submitter, for the commit feed (default ""). */
  senders?: readonly string[];
  /** TTL to set on the codespace, seconds. */
  ttlSeconds: number;
  /** Set for codespaces saved to the site: the commit marks the codespace unsaved (see SaveState). */
  save?: CommitSave;
}

/**
 * Save settings of a commit. The commit itself (atomically, in the codespace's own record) marks the
 * codespace unsaved: `dirty_since` (time of the first unsaved commit, kept) and `touched_at`, and
 * holds its TTL at max(ttlSeconds, retentionSeconds) instead of ttlSeconds until a save settles it.
 */
export interface CommitSave {
  /** SAVE_DEBOUNCE_MS */
  debounceMs: number;
  /** SAVE_MAX_WAIT_MS */
  maxWaitMs: number;
  /** SAVE_MAX_RETENTION_S */
  retentionSeconds: number;
}

/**
 * Outcome of claiming a codespace's save:
 * - `gone`: no such codespace (expired or deleted); `clean`: nothing unsaved;
 * - `busy`: another owner's lease runs, or the save is not due yet: look again at `until` (ms since
 *   the epoch, the store's clock);
 * - `claimed`: the lease is this owner's until now + leaseMs; save `code` at `version` of `epoch`.
 *   `dirtySince` is the time of the first unsaved commit, `now` the store's clock at the claim
 *   (pass it to `settleSave`), `attempts` the failed attempts so far (for the backoff).
 */
export type ClaimResult =
  | { status: "gone" }
  | { status: "clean" }
  | { status: "busy"; until: number }
  | { status: "claimed"; epoch: string; version: number; code: string; dirtySince: number; now: number; attempts: number };

export interface ClaimOptions {
  /** Unique id of the claiming process. */
  owner: string;
  leaseMs: number;
  debounceMs: number;
  maxWaitMs: number;
  /** Claim even when not due yet (graceful shutdown); another owner's live lease still wins. */
  force?: boolean;
}

/**
 * The durable save state of codespaces (server/persistence/ uses it). It lives in each codespace's
 * own record (one key, one Redis Cluster slot), written by the commit and by these atomic steps;
 * `dueSaves` reads an index that is only a hint (written outside the commit, before and after it).
 */
export interface SaveState {
  /** Codespaces whose save may be due now (a hint: `claimSave` decides), at most `limit`. @throws StoreUnavailableError */
  dueSaves(limit: number): Promise<string[]>;
  /** Claims a codespace's save with a lease. @throws StoreUnavailableError */
  claimSave(codespace: string, options: ClaimOptions): Promise<ClaimResult>;
  /**
   * The site took `version` (saved, or answered that it holds newer): records it as saved, releases
   * the owner's lease. `clean`: nothing newer, the normal TTL resumes (counted from the last commit);
   * `dirty`: newer commits wait for their own save; `lost`: the codespace is gone or another epoch.
   * @throws StoreUnavailableError
   */
  settleSave(codespace: string, owner: string, settle: { epoch: string; version: number; claimedAt: number; debounceMs: number; maxWaitMs: number }): Promise<"clean" | "dirty" | "lost">;
  /** A save attempt failed: keeps the owner's lease `delayMs` more and counts the attempt. @throws StoreUnavailableError */
  deferSave(codespace: string, owner: string, delayMs: number): Promise<void>;
  /** Gives up the owner's lease now, if it still holds it (shutdown): another process may claim at once. */
  releaseSave(codespace: string, owner: string): Promise<void>;
  /** Codespaces with unsaved commits (Redis: the size of the due index). */
  unsavedCount(): Promise<number>;
  /**
   * Of `codespaces`, the ones that still have unsaved commits (the others were saved, by any process,
   * or are gone). Redis also lists each of those in the due index if it is missing there (due now):
   * the index is a hint on another key, which a failover of its master can lose while the codespace's
   * own hash keeps its unsaved mark. @throws StoreUnavailableError
   */
  unsaved(codespaces: readonly string[]): Promise<string[]>;
}

/**
 * Outcome of a compare-and-set commit:
 * - `ok`: stored; `version` is the version after the last update.
 * - `conflict`: the stored version moved; `version` is the stored one and `updates` the history from
 *   `baseVersion + 1` to it, or `snapshot` when history no longer reaches back that far.
 * - `epoch`: the stored codespace is another incarnation (`epoch` holds it) or is gone (`epoch` null).
 */
export type CommitResult =
  | { status: "ok"; version: number }
  | { status: "conflict"; version: number; updates: WireUpdate[] }
  | { status: "conflict"; version: number; snapshot: Snapshot }
  | { status: "epoch"; epoch: string | null };

/**
 * Outcome of `restart`: `restarted` (the new epoch starts at the stored `version`, announced on the
 * commit feed), or `epoch` when the stored epoch is no longer the one asked (restarted already by
 * another process, or gone: null); nothing written then.
 */
export type RestartResult = { status: "restarted"; version: number; epoch: string } | { status: "epoch"; epoch: string | null };

/**
 * Outcome of `confirm`: `ok` (the store holds that version, replicated when the store waits for
 * replicas), `behind` (the stored version is lower: the store lost commits), `epoch` (another epoch,
 * or gone: null).
 */
export type ConfirmResult = { status: "ok" } | { status: "behind"; version: number } | { status: "epoch"; epoch: string | null };

/**
 * History read for `pull` and for catching up a stale cache:
 * - `updates`: every update after the asked version (`version` is the latest);
 * - `snapshot`: history no longer reaches back;
 * - `epoch`: the stored epoch differs (or the codespace is gone: null).
 */
export type HistoryResult =
  | { status: "updates"; version: number; updates: WireUpdate[] }
  | { status: "snapshot"; snapshot: Snapshot }
  | { status: "epoch"; epoch: string | null };

/**
 * A commit, as every watching process receives it from the commit feed: the updates that became
 * versions `baseVersion + 1 ..`, with their submitters' socket ids.
 */
export interface Commit {
  epoch: string;
  baseVersion: number;
  updates: (WireUpdate & { sender: string })[];
}

/** Receives the commits of one codespace, in commit order. */
export type CommitListener = (commit: Commit) => void;

/** Called with the codespace id when its stored state expires or is deleted. */
export type ExpiredListener = (codespace: string) => void;

export interface CodeStore extends SaveState {
  /**
   * Returns the codespace's current state, creating it (`initialCode`, default empty, version 0, a
   * new random epoch, TTL `ttlSeconds`) when absent. A record without an epoch (written by the site API: `name`, `code`)
   * is adopted: it keeps its code and gets version 0 and an epoch.
   * @throws StoreUnavailableError
   */
  open(codespace: string, ttlSeconds: number, initialCode?: string): Promise<Snapshot>;
  /**
   * The codespace's current state, or null when it does not exist or has no epoch yet. Never creates:
   * the accept path uses it so that an edit to an expired codespace cannot recreate it.
   * @throws StoreUnavailableError
   */
  load(codespace: string): Promise<Snapshot | null>;
  /**
   * True when the codespace has a record, with or without an epoch (a record written by the site
   * API, `name` and `code` only, counts). @throws StoreUnavailableError
   */
  exists(codespace: string): Promise<boolean>;
  /** Atomic compare-and-set of text, version, history and TTL. @throws StoreUnavailableError */
  commit(codespace: string, req: CommitRequest): Promise<CommitResult>;
  /** Updates after `version` (at most the configured history length back). @throws StoreUnavailableError */
  history(codespace: string, epoch: string, version: number): Promise<HistoryResult>;
  /**
   * The store lost commits of `epoch` (a process saw a version the store no longer has: a Redis
   * failover to a replica that had not received them, or a restore from an older copy). Starts a
   * new epoch (epoch.ts: the store's time, then `id`, a random UUID) on the stored state if the stored
   * epoch is still `epoch`, and announces it
   * on the commit feed (a Commit of the new epoch with no updates), so that the lost versions are
   * never reused for other text under the old epoch. @throws StoreUnavailableError
   */
  restart(codespace: string, epoch: string, id: string): Promise<RestartResult>;
  /**
   * Before acknowledging batches that add nothing (resends of updates already committed): checks
   * that the store still holds `version` of `epoch`, and, with REDIS_WAIT_REPLICAS, that the replicas
   * hold it too. Absent: the store cannot lose what its own process committed (memory stores).
   * @throws StoreUnavailableError (not confirmed by enough replicas in time)
   */
  confirm?(codespace: string, epoch: string, version: number): Promise<ConfirmResult>;
  /**
   * The commit feed: delivers every later successful commit of `codespace`, by any process, to
   * `listener`, in commit order (RedisStore: PUBLISHed by the commit script itself, so the order is
   * Redis's execution order). Resolves once subscribed. One listener per codespace per store.
   * Messages can be lost while the connection is down; the version numbers reveal the gap, and
   * `resumed` (RedisStore) is called when the subscription was re-established after a reconnection
   * or a cluster master's failover, for the owner to check what it saw against the store.
   * @throws StoreUnavailableError
   */
  watch(codespace: string, listener: CommitListener, resumed?: () => void): Promise<void>;
  /** Stops the commit feed of `codespace`. */
  unwatch(codespace: string): Promise<void>;
  /** Registers a listener for expiry and deletion of any codespace. */
  onExpired(listener: ExpiredListener): void;
  /** True while the store can serve requests (for `/readyz`). */
  isReady(): boolean;
  close(): Promise<void>;
}
