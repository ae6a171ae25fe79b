/**
 * `SyncEngine`: keeps a headless CodeMirror `EditorState` in sync with the server through
 * `@codemirror/collab`, over any transport that can send a batch and a pull (`SyncTransport`; in
 * the client, the Socket.IO connection of connection.ts). It is fed the server's messages
 * (`connected`, `disconnected`, `received`) and local changes (`applyLocal`).
 *
 * Units: positions and lengths in UTF-16 code units; times in milliseconds.
 *
 * Sync rules (docs/protocol.md, "Rules for client authors"):
 * - at most one `insert_value` in flight; each batch carries every unconfirmed local update;
 * - own updates are confirmed by their broadcast; after an ack for version V the next batch waits
 *   until broadcasts (or a `pull`) bring the synced version to V;
 * - broadcasts are applied in version order; a gap lasting `gapTimeoutMs` triggers a `pull`.
 *
 * State (`phase`): `unloaded` (no `connected` payload yet: no document), `offline` (disconnected;
 * `reload`: take the next snapshot whatever its version), `online` (with what the pull and push
 * sides are doing), `closed`. Dropped local changes: when the document is replaced by the server's
 * state (`reset`: a new epoch, history too old, a batch refused for good), unconfirmed local changes
 * are discarded, except that on `version_too_old` and `epoch` the changes never sent are carried
 * onto the snapshot (carry-over.ts) and sent as new updates; those sent may be held by the server
 * already.
 */
import { ChangeSet, type ChangeSpec, type EditorState, type Text } from "@codemirror/state";
import { getSyncedVersion, sendableUpdates } from "@codemirror/collab";
import { DEFAULT_LIMITS } from "../protocol/constants.js";
import type { WireError } from "../protocol/errors.js";
import type {
  ConnectedPayload,
  InsertValueAck,
  InsertValuePayload,
  Mode,
  PullAck,
  PullPayload,
  ServerLimits,
  VersionedUpdate,
  WireChange,
  WireUpdate,
} from "../protocol/events.js";
import { changeSetsFromWire, changesToWire, composeAll, LINE_SEPARATOR, wireProblem } from "../protocol/wire.js";
import { Backoff } from "./backoff.js";
import { carryOnto } from "./carry-over.js";
import { compactUnconfirmed, createCollabState, receiveServerUpdates } from "./collab-state.js";
import { TypedEmitter } from "./emitter.js";
import { CodespaceClientError, TRANSIENT_CODES } from "./errors.js";
import { dropOversized } from "./oversized.js";
import type { BatchLimits, ResetEvent, ResetReason } from "./types.js";
import { UpdateBuffer } from "./update-buffer.js";
import { Waiters } from "./waiters.js";

/** What the engine needs from a connection. Requests reject (any error) when no ack will come. */
export interface SyncTransport {
  insertValue(payload: InsertValuePayload): Promise<InsertValueAck>;
  pull(payload: PullPayload): Promise<PullAck>;
  /** Drops the connection and opens a new one; its `connected` payload goes to `connected()`. */
  reconnect(): void;
}

/** The push side while online: what happens to the unconfirmed local updates. */
export type PushState =
  /** Nothing sent and unacknowledged; a batch goes out when there are local updates. */
  | { kind: "idle" }
  /**
   * One `insert_value` in flight (`key` identifies the batch: epoch, version, size; `maxBytes`: an
   * upper bound of its size in UTF-8 bytes).
   */
  | { kind: "sending"; key: string; maxBytes: number }
  /** Acked up to `version`; no new batch until broadcasts or a pull bring the synced version there. */
  | { kind: "confirming"; version: number }
  /** Refused with a transient code; resent after the backoff delay. */
  | { kind: "backoff" };

/** The pull side while online. */
export type PullState = "idle" | "pulling" | "backoff";

export type SyncPhase =
  | { kind: "unloaded" }
  | { kind: "offline"; reload: boolean }
  | { kind: "online"; pull: PullState; push: PushState }
  | { kind: "closed"; error: CodespaceClientError };

export interface SyncEngineOptions {
  /** collab client id sent with every update. */
  clientID: string;
  /** How long a version gap, or an acked batch not yet confirmed by broadcasts, may last before a pull, ms. Default 200. */
  gapTimeoutMs?: number;
  /**
   * Largest `insert_value` message sent, bytes. Default: what the server announces in `connected`
   * (`limits.maxMessageBytes`), else DEFAULT_LIMITS.maxMessageBytes.
   */
  maxMessageBytes?: number;
  /**
   * The server's batch limits, overriding what it announces in `connected` (`limits`; older servers:
   * DEFAULT_LIMITS); see `batchPrefix` and `splitChanges`.
   */
  limits?: Partial<BatchLimits>;
}

export interface SyncEngineEvents {
  /** The document changed (`remote`: from the server; `changes` absent after a reset). */
  change: { remote: boolean; changes?: ChangeSet };
  /** The document was replaced by the server's state. */
  reset: ResetEvent;
  /** A failure the engine cannot fix by itself (a refused batch, a desync, ...). */
  error: CodespaceClientError;
  /** The engine gave up for good (the same batch keeps closing the connection); the owner stops it. */
  fatal: CodespaceClientError;
}

/** Consecutive `invalid_version` refusals of a batch (after pulling) before it is dropped. */
const MAX_INVALID_STREAK = 3;
/**
 * Connections lost in a row right after sending the same batch before the engine gives up with
 * `message_too_large` (Socket.IO closes the connection on a message above the server's limit; a
 * reconnect would resend it forever).
 */
const MAX_CLOSE_STREAK = 3;
/**
 * The smallest MAX_MESSAGE_BYTES a server accepts (its configuration's minimum): a batch below it
 * cannot be what closes the connection, so its losses (a flaky network) never count toward
 * MAX_CLOSE_STREAK.
 */
const SMALLEST_SERVER_MESSAGE_LIMIT = 1024;

export class SyncEngine extends TypedEmitter<SyncEngineEvents> {
  readonly #transport: SyncTransport;
  readonly #clientID: string;
  readonly #gapTimeoutMs: number;
  readonly #options: Pick<SyncEngineOptions, "maxMessageBytes" | "limits">;
  /** The limits in force (`limitsInForce`): set again by every `connected` payload. */
  #limits: ServerLimits;
  #phase: SyncPhase = { kind: "unloaded" };
  #state: EditorState;
  /** The document at the synced version (what the server holds at `version`). */
  #confirmed: Text;
  #epoch = "";
  #mode: Mode = "view_only";
  /** Bumped on every disconnect: answers from an older connection are ignored. */
  #link = 0;
  /** Bumped on every reset: acks of batches sent before it are not interpreted. */
  #resetGen = 0;
  readonly #buffer = new UpdateBuffer<VersionedUpdate>();
  /** Leading unconfirmed updates that were sent at least once (the server may hold them). */
  #sentPrefix = 0;
  /** Why the next `connected` snapshot is taken whatever its version (`#reconnect(reason)`). */
  #reloadReason: ResetReason = "desync";
  #invalidStreak = 0;
  /** Connection losses in a row right after sending the batch `#closedKey`. */
  #closeStreak = 0;
  #closedKey = "";
  #pushScheduled = false;
  #gapTimer: ReturnType<typeof setTimeout> | undefined;
  #pushRetry: ReturnType<typeof setTimeout> | undefined;
  #pullRetry: ReturnType<typeof setTimeout> | undefined;
  readonly #backoff = new Backoff();
  readonly #waiters = new Waiters();

  constructor(transport: SyncTransport, opts: SyncEngineOptions) {
    super();
    this.#transport = transport;
    this.#clientID = opts.clientID;
    this.#gapTimeoutMs = opts.gapTimeoutMs ?? 200;
    this.#options = { maxMessageBytes: opts.maxMessageBytes, limits: opts.limits };
    this.#limits = limitsInForce(undefined, this.#options);
    this.#state = createCollabState("", 0, this.#clientID);
    this.#confirmed = this.#state.doc;
  }

  /** The current phase (a copy is not made: do not mutate). */
  get phase(): Readonly<SyncPhase> {
    return this.#phase;
  }
  get state(): EditorState {
    return this.#state;
  }
  /** Number of server updates applied (the version the local state is based on). */
  get version(): number {
    return getSyncedVersion(this.#state);
  }
  get epoch(): string {
    return this.#epoch;
  }
  get mode(): Mode {
    return this.#mode;
  }
  get clientID(): string {
    return this.#clientID;
  }
  /** Number of local updates not yet confirmed by the server. */
  get pending(): number {
    return sendableUpdates(this.#state).length;
  }

  // ---- inputs from the connection -------------------------------------------------------------

  /** A `connected` payload: loads the first snapshot, or resyncs after a reconnect. */
  connected(p: ConnectedPayload): void {
    const phase = this.#phase;
    if (phase.kind === "closed") return;
    this.#mode = p.mode;
    this.#limits = limitsInForce(p.limits, this.#options);
    this.#backoff.reset();
    this.#phase = { kind: "online", pull: "idle", push: { kind: "idle" } };
    if (phase.kind === "unloaded") {
      this.#epoch = p.epoch;
      this.#state = createCollabState(p.code, p.version, this.#clientID);
      this.#confirmed = this.#state.doc;
      this.#drain();
      return;
    }
    const reload = phase.kind === "offline" && phase.reload;
    if (p.mode !== "edit" && this.pending > 0) {
      // The right to edit was taken while we were away: what is unconfirmed can never be sent, and
      // would stay on screen as a text nobody else has.
      this.#report({ code: "forbidden", message: "this connection came back view_only; local changes not yet confirmed are dropped" });
      this.#resetTo(p.version, p.code, p.epoch, "rejected");
      this.#drain();
    } else if (p.epoch !== this.#epoch || reload || p.version < this.version) {
      this.#resetTo(p.version, p.code, p.epoch, p.epoch !== this.#epoch ? "epoch" : reload ? this.#reloadReason : "desync");
      this.#drain();
    } else if (p.version > this.version) {
      this.#pull(); // its answer drains and resends
    } else {
      this.#drain();
    }
  }

  /** The connection was lost (`reason`: Socket.IO's disconnect reason). */
  disconnected(reason: string): void {
    const phase = this.#phase;
    if (phase.kind === "closed") return;
    const sending = phase.kind === "online" && phase.push.kind === "sending" ? phase.push : undefined;
    if (sending && sending.maxBytes >= SMALLEST_SERVER_MESSAGE_LIMIT && (reason === "transport close" || reason === "transport error")) {
      this.#closeStreak = sending.key === this.#closedKey ? this.#closeStreak + 1 : 1;
      this.#closedKey = sending.key;
      if (this.#closeStreak >= MAX_CLOSE_STREAK) {
        const err = new CodespaceClientError(
          "message_too_large",
          `the connection closed ${this.#closeStreak} times right after sending the same insert_value batch ` +
            "(larger than the server's MAX_MESSAGE_BYTES?); stopped instead of resending it forever",
        );
        this.emit("error", err);
        this.emit("fatal", err);
        if (this.#phase.kind === "closed") return;
      }
    }
    this.#goOffline(phase.kind === "offline" && phase.reload);
  }

  /** An accepted update broadcast by the server (any order, duplicates allowed). */
  received(u: VersionedUpdate): void {
    this.receivedAll([u]);
  }

  /**
   * Accepted updates broadcast by the server, e.g. the updates of one batched `insert_value` (any
   * order, duplicates allowed, as for `received`): buffered, then the run after the synced version
   * is applied in one go (one `change` event).
   */
  receivedAll(updates: readonly VersionedUpdate[]): void {
    if (this.#phase.kind === "closed") return;
    // Before the first `connected` the synced version is unknown: keep everything, filter later.
    const synced = this.#phase.kind === "unloaded" ? -1 : this.version;
    for (const u of updates) this.#buffer.add(u, synced);
    this.#drain();
  }

  // ---- local API ------------------------------------------------------------------------------

  /**
   * Applies a local change and schedules a push (positions against the current local document).
   * @throws CodespaceClientError `closed`, `forbidden` (view_only), `invalid_payload` (surrogates);
   *   RangeError for out-of-range positions.
   */
  applyLocal(changes: readonly WireChange[] | ChangeSpec): void {
    if (this.#phase.kind === "closed") throw new CodespaceClientError("closed", "the client is closed");
    if (this.#mode !== "edit") throw new CodespaceClientError("forbidden", "this connection is view_only");
    const doc = this.#state.doc;
    const set = ChangeSet.of(changes as ChangeSpec, doc.length, LINE_SEPARATOR);
    const problem = wireProblem(doc, set);
    if (problem) throw new CodespaceClientError("invalid_payload", problem);
    if (set.empty) return;
    this.#state = this.#state.update({ changes: set }).state;
    this.emit("change", { remote: false });
    this.#schedulePush();
  }

  /** Resolves once no local update is unconfirmed and no batch is in flight. */
  whenSynced(): Promise<void> {
    if (this.#phase.kind === "closed") return Promise.reject(new CodespaceClientError("closed", "the client is closed"));
    return this.#waiters.wait(() => !this.#sending() && this.pending === 0);
  }

  /** Resolves once the synced version is at least `version`. */
  waitForVersion(version: number): Promise<void> {
    if (this.#phase.kind === "closed") return Promise.reject(new CodespaceClientError("closed", "the client is closed"));
    return this.#waiters.wait(() => this.version >= version);
  }

  /** Stops for good: timers cleared, pending waits rejected with `err`. */
  close(err: CodespaceClientError): void {
    if (this.#phase.kind === "closed") return;
    this.#phase = { kind: "closed", error: err };
    this.#clearTimers();
    this.#waiters.rejectAll(err);
  }

  // ---- phase helpers --------------------------------------------------------------------------

  #online(): Extract<SyncPhase, { kind: "online" }> | undefined {
    return this.#phase.kind === "online" ? this.#phase : undefined;
  }

  #sending(): boolean {
    return this.#online()?.push.kind === "sending";
  }

  #goOffline(reload: boolean): void {
    this.#link++;
    this.#buffer.clear();
    this.#clearTimers();
    if (this.#phase.kind !== "unloaded") this.#phase = { kind: "offline", reload };
    this.#waiters.check();
  }

  /**
   * Drops the connection; the next `connected` resyncs (`reload`, the reason of the reset it will be:
   * from its snapshot, whatever its version).
   */
  #reconnect(reload?: ResetReason): void {
    if (this.#phase.kind === "closed") return;
    if (reload) this.#reloadReason = reload;
    this.#goOffline(reload !== undefined);
    this.#transport.reconnect();
  }

  #clearTimers(): void {
    for (const t of [this.#gapTimer, this.#pushRetry, this.#pullRetry]) if (t) clearTimeout(t);
    this.#gapTimer = this.#pushRetry = this.#pullRetry = undefined;
  }

  // ---- receiving ------------------------------------------------------------------------------

  /** Applies the contiguous run of buffered updates after the synced version, then re-evaluates. */
  #drain(): void {
    if (!this.#online()) return;
    const run = this.#buffer.take(this.version);
    if (run.length && !this.#applyRemote(run)) return;
    this.#afterSync();
  }

  /**
   * Applies consecutive server updates through `receiveUpdates`; false on a desync. The document at
   * the new synced version is the new state's when nothing was unconfirmed (then state and synced
   * document are the same), else the synced document with the run applied.
   */
  #applyRemote(run: VersionedUpdate[]): boolean {
    let converted: ReturnType<typeof changeSetsFromWire>;
    let confirmed: Text | undefined;
    const before = this.pending;
    try {
      converted = changeSetsFromWire(run, this.#confirmed.length);
      if (before > 0) confirmed = converted.updates.reduce((doc, u) => u.changes.apply(doc), this.#confirmed);
    } catch (err) {
      this.#desync(err);
      return false;
    }
    const received = receiveServerUpdates(this.#state, converted.updates);
    this.#state = received.state;
    this.#confirmed = confirmed ?? received.state.doc;
    this.#sentPrefix = Math.max(0, this.#sentPrefix - (before - this.pending));
    if (received.changes) this.emit("change", { remote: true, changes: received.changes });
    return true;
  }

  /** After the synced version moved: arm or clear the gap timer, resolve waiters, maybe push. */
  #afterSync(): void {
    const online = this.#online();
    if (!online) return;
    const synced = this.version;
    if (online.push.kind === "confirming" && synced >= online.push.version) online.push = { kind: "idle" };
    if (this.#buffer.hasGap(synced) || online.push.kind === "confirming") {
      this.#gapTimer ??= setTimeout(() => {
        this.#gapTimer = undefined;
        this.#pull();
      }, this.#gapTimeoutMs);
    } else if (this.#gapTimer) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
    this.#waiters.check();
    this.#schedulePush();
  }

  /** Asks for every update after the synced version (or a snapshot) and applies it. */
  #pull(): void {
    const online = this.#online();
    if (!online || online.pull === "pulling") return;
    if (this.#pullRetry) clearTimeout(this.#pullRetry);
    this.#pullRetry = undefined;
    online.pull = "pulling";
    const link = this.#link;
    this.#transport.pull({ epoch: this.#epoch, version: this.version }).then(
      (res) => {
        const now = this.#online();
        if (link !== this.#link || !now) return;
        now.pull = "idle";
        if (!res.ok) return this.#onPullError(res.error);
        if ("code" in res) this.#resetTo(res.version, res.code, this.#epoch, "version_too_old");
        else for (const u of res.updates) this.#buffer.add(u, this.version);
        this.#drain();
      },
      () => {
        // No answer on a live connection (timeout): resync on a new one.
        if (link === this.#link) this.#reconnect();
      },
    );
  }

  #onPullError(error: WireError): void {
    const online = this.#online();
    if (!online) return;
    if (error.code === "invalid_version" || error.code === "version_too_old") {
      this.#reconnect(error.code === "version_too_old" ? "version_too_old" : undefined);
    } else if (TRANSIENT_CODES.has(error.code)) {
      online.pull = "backoff";
      this.#pullRetry = setTimeout(() => {
        this.#pullRetry = undefined;
        const now = this.#online();
        if (now?.pull !== "backoff") return;
        now.pull = "idle";
        this.#pull();
      }, this.#backoff.next());
    } else {
      this.#report(error, "pull: ");
    }
  }

  /**
   * Replaces the document by the server's state at `version`. Unconfirmed changes are dropped, except
   * those never sent, which are carried onto the snapshot (`#carryUnsent`) and become the new
   * unconfirmed update: after `version_too_old` and a new `epoch` (the codespace expired and was
   * loaded again while we were offline, or the store lost commits and restarted it); not after
   * `rejected` (refused for good) or `desync` (the local copy is not trusted), nor in mode view_only
   * (never sendable).
   */
  #resetTo(version: number, code: string | Text, epoch: string, reason: ResetReason): void {
    const pending = sendableUpdates(this.#state);
    const sent = Math.min(this.#sentPrefix, pending.length);
    const unsent = pending.length - sent;
    const snapshot = createCollabState(code, version, this.#clientID);
    // Carried only while this connection may edit: a view_only one (the site took the right away
    // while we were offline) could never send them, and would show a text nobody else has.
    const carry = (reason === "version_too_old" || reason === "epoch") && unsent > 0 && this.#mode === "edit";
    const carried = carry ? this.#carryUnsent(pending, sent, snapshot.doc) : undefined;
    const kept = carried ? unsent : 0;
    this.#resetGen++;
    this.#epoch = epoch;
    this.#state = carried ? snapshot.update({ changes: carried }).state : snapshot;
    this.#confirmed = snapshot.doc;
    this.#sentPrefix = 0;
    this.#invalidStreak = 0;
    const online = this.#online();
    if (online?.push.kind === "confirming") online.push = { kind: "idle" };
    this.#buffer.prune(version);
    this.emit("reset", { reason, version, epoch, dropped: pending.length - kept, kept });
    this.emit("change", { remote: true });
    this.#waiters.check();
  }

  /**
   * The unconfirmed updates after the first `sent` (those sent), composed and carried onto
   * `snapshot`: their base is the confirmed document plus the sent updates. Undefined when nothing
   * valid is left (carry-over.ts).
   */
  #carryUnsent(pending: readonly { changes: ChangeSet }[], sent: number, snapshot: Text): ChangeSet | undefined {
    let base = this.#confirmed;
    for (const u of pending.slice(0, sent)) base = u.changes.apply(base);
    return carryOnto(base, composeAll(pending.slice(sent).map((u) => u.changes)), snapshot);
  }

  /** Something the server sent does not fit our copy: reload from a fresh `connected` snapshot. */
  #desync(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.emit("error", new CodespaceClientError("desync", `out of sync with the server (${message}); reloading`));
    this.#reconnect("desync");
  }

  // ---- pushing --------------------------------------------------------------------------------

  #schedulePush(): void {
    if (this.#pushScheduled) return;
    this.#pushScheduled = true;
    queueMicrotask(() => {
      this.#pushScheduled = false;
      this.#flush();
    });
  }

  /** Sends every unconfirmed update as one `insert_value` batch, when allowed to. */
  #flush(): void {
    const online = this.#online();
    if (!online || online.pull !== "idle" || online.push.kind !== "idle") return;
    if (this.#mode !== "edit" || this.pending === 0) return;
    try {
      const compacted = compactUnconfirmed(this.#state, this.#confirmed, this.#sentPrefix, this.#limits.maxChangesPerUpdate);
      this.#state = compacted.state;
      this.#sentPrefix = compacted.kept;
    } catch (err) {
      this.#desync(err);
      return;
    }
    const pending = sendableUpdates(this.#state);
    if (pending.length === 0) return this.#waiters.check();
    const updates = batchPrefix(
      pending.map((u): WireUpdate => ({ clientID: u.clientID, changes: changesToWire(u.changes) })),
      this.#limits,
    );
    const json = JSON.stringify(updates);
    // UTF-8 is at most 3 bytes per UTF-16 code unit: measure exactly only when it may matter
    const maxBytes = json.length * 3 + 256;
    const { maxMessageBytes } = this.#limits;
    const bytes = maxBytes > maxMessageBytes ? new TextEncoder().encode(json).length + 256 : 0;
    if (bytes > maxMessageBytes) {
      this.#report(
        { code: "message_too_large", message: `the batch is about ${bytes} bytes, more than maxMessageBytes (${maxMessageBytes})` },
        "insert_value not sent, local changes dropped: ",
      );
      this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
      return this.#afterSync();
    }
    online.push = { kind: "sending", key: `${this.#epoch}:${this.version}:${json.length}`, maxBytes };
    this.#sentPrefix = updates.length;
    const link = this.#link;
    const gen = this.#resetGen;
    this.#transport.insertValue({ epoch: this.#epoch, version: this.version, updates }).then(
      (res) => this.#onInsertAck(res, link, gen),
      () => {
        // No answer on a live connection (timeout): resync on a new one, then resend.
        if (link === this.#link) this.#reconnect();
      },
    );
  }

  #onInsertAck(res: InsertValueAck, link: number, gen: number): void {
    const online = this.#online();
    if (link !== this.#link || !online) return; // that connection is gone; the next `connected` resyncs
    online.push = { kind: "idle" };
    this.#closeStreak = 0;
    if (gen !== this.#resetGen) return this.#afterSync(); // the batch predates a reset
    if (res.ok) {
      this.#invalidStreak = 0;
      this.#backoff.reset();
      if (res.version > this.version) online.push = { kind: "confirming", version: res.version };
      return this.#afterSync();
    }
    const { code } = res.error;
    if (code === "invalid_version") {
      if (++this.#invalidStreak >= MAX_INVALID_STREAK) {
        this.#report(res.error, "insert_value refused repeatedly, local changes dropped: ");
        this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
        return this.#afterSync();
      }
      this.#pull(); // then resend what is still unconfirmed
    } else if (code === "version_too_old") {
      this.#pull(); // answers with a snapshot
    } else if (TRANSIENT_CODES.has(code)) {
      // Refused by a guard (rate_limited, shutting_down: before anything is applied), the batch is
      // not held by the server, so a version_too_old reset while waiting carries it (with a split
      // replace-all, dropping it would half-apply it). Not store_unavailable or internal_error: the
      // commit may have been applied (a timeout after Redis ran it), and only a resend of the same
      // updates is recognised.
      if (code === "rate_limited" || code === "shutting_down") this.#sentPrefix = 0;
      online.push = { kind: "backoff" };
      this.#pushRetry = setTimeout(() => {
        this.#pushRetry = undefined;
        const now = this.#online();
        if (now?.push.kind !== "backoff") return;
        now.push = { kind: "idle" };
        this.#flush();
      }, this.#backoff.next());
      this.#waiters.check();
    } else if (code === "doc_too_large" && this.#dropOversized(res.error)) {
      this.#afterSync();
    } else {
      // Refused for good (invalid_payload, forbidden, doc_too_large): drop what cannot be sent.
      this.#report(res.error, "insert_value refused, local changes dropped: ");
      this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
      this.#afterSync();
    }
  }

  /**
   * `doc_too_large`: drops only the insertions that make the document too long (oversized.ts),
   * reports "this paste is too large (limit N characters)" and keeps every other unsent edit.
   * False when that cannot help (the caller then drops everything).
   */
  #dropOversized(error: WireError): boolean {
    if (typeof error.limit !== "number") return false;
    const r = dropOversized(this.#state, this.#confirmed, error.limit);
    if (!r) return false;
    this.#state = r.state;
    this.#sentPrefix = 0;
    this.#invalidStreak = 0;
    this.#report({ code: "doc_too_large", message: `this paste is too large (limit ${error.limit} characters); your other edits are kept` });
    this.emit("change", { remote: true, changes: r.changes });
    return true;
  }

  #report(error: WireError, prefix = ""): void {
    this.emit("error", new CodespaceClientError(error.code, prefix + error.message));
  }
}

/**
 * The limits in force: `options` (the client's own), else what the server announced in `connected`
 * (values that are not positive integers ignored), else DEFAULT_LIMITS; an update's changes are
 * capped by the batch's too, so that an update always fits a batch alone (a server may allow fewer
 * changes per batch than per update).
 */
function limitsInForce(announced: ConnectedPayload["limits"], options: Pick<SyncEngineOptions, "maxMessageBytes" | "limits">): ServerLimits {
  const { maxChangesPerUpdate, maxChangesPerBatch, maxUpdatesPerBatch, maxMessageBytes } = DEFAULT_LIMITS;
  const limits: ServerLimits = { maxChangesPerUpdate, maxChangesPerBatch, maxUpdatesPerBatch, maxMessageBytes };
  for (const k of Object.keys(limits) as (keyof ServerLimits)[]) {
    const v = announced?.[k];
    if (Number.isSafeInteger(v) && v! >= 1) limits[k] = v!; // anything else (an odd server): the default
  }
  Object.assign(limits, options.limits);
  if (options.maxMessageBytes !== undefined) limits.maxMessageBytes = options.maxMessageBytes;
  limits.maxChangesPerUpdate = Math.min(limits.maxChangesPerUpdate, limits.maxChangesPerBatch);
  return limits;
}

/**
 * The longest prefix of `updates` (at least the first) that one `insert_value` may carry: at most
 * `maxUpdatesPerBatch` updates and `maxChangesPerBatch` changes in all (protocol rule 2: a batch
 * carries every unconfirmed update, or the oldest ones; the rest go once those are confirmed).
 */
export function batchPrefix(updates: WireUpdate[], limits: BatchLimits): WireUpdate[] {
  let changes = 0;
  let n = 0;
  for (const u of updates) {
    if (n > 0 && (n >= limits.maxUpdatesPerBatch || changes + u.changes.length > limits.maxChangesPerBatch)) break;
    changes += u.changes.length;
    n++;
  }
  return n === updates.length ? updates : updates.slice(0, n);
}
