/**
 * `CodespaceClient`: a typed client of the `/codespace` Socket.IO namespace (docs/protocol.md) that
 * keeps a headless CodeMirror `EditorState` in sync with the server through `@codemirror/collab`.
 * Runs in Node and browsers (no node-only imports).
 *
 * Units: every position and length is in UTF-16 code units; timeouts are in milliseconds.
 *
 * Sync rules it follows (the protocol's "rules for client authors"):
 * - at most one `insert_value` in flight; each batch carries every unconfirmed local update;
 * - own updates are confirmed by their broadcast; after an ack for version V the next batch waits
 *   until broadcasts (or a `pull`) bring the synced version to V;
 * - broadcasts are applied in version order; a gap lasting `gapTimeoutMs` triggers a `pull`.
 *
 * Dropped local changes: when the document is replaced by the server's state (`reset` event: a new
 * epoch, history too old, a batch the server refuses for good), local changes the server had not
 * confirmed are discarded.
 */
import { io, type Socket } from "socket.io-client";
import { ChangeSet, type ChangeSpec, type EditorState, type Text } from "@codemirror/state";
import { getSyncedVersion, sendableUpdates } from "@codemirror/collab";
import type {
  ClientToServerEvents,
  ConnectedPayload,
  InsertValueAck,
  InsertValueBroadcast,
  Mode,
  PullAck,
  Selection,
  ServerToClientEvents,
  VersionedUpdate,
  WireChange,
  WireUpdate,
} from "../protocol/events.js";
import type { WireError } from "../protocol/errors.js";
import { DEFAULT_LIMITS, NAMESPACE } from "../protocol/constants.js";
import { Backoff } from "./backoff.js";
import { compactUnconfirmed, createCollabState, receiveServerUpdates } from "./collab-state.js";
import { TypedEmitter } from "./emitter.js";
import { CodespaceClientError, TRANSIENT_CODES } from "./errors.js";
import type { CodespaceClientEvents, ConnectionStatus, ConnectOptions, ResetReason } from "./types.js";
import { UpdateBuffer } from "./update-buffer.js";
import { Waiters } from "./waiters.js";
import { changesToWire, LINE_SEPARATOR, updatesFromWire, wireProblem } from "../protocol/wire.js";

/** The typed Socket.IO socket the client uses (exposed as `client.socket`). */
export type CodespaceSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Consecutive `invalid_version` refusals of a batch (after pulling) before it is dropped. */
const MAX_INVALID_STREAK = 3;
/** Default of `maxMessageBytes`: the server's default MAX_MESSAGE_BYTES (4 MiB). */
const DEFAULT_MAX_MESSAGE_BYTES = DEFAULT_LIMITS.maxMessageBytes;
/**
 * Connections lost in a row right after sending the same batch before the client stops with
 * `message_too_large` (Socket.IO closes the connection on a message above the server's limit; a
 * reconnect would resend it forever).
 */
const MAX_CLOSE_STREAK = 3;
/** How long `setSelection` waits for its acknowledgement, ms. */
const SELECTION_ACK_TIMEOUT_MS = 10_000;

function randomClientID(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36);
}

export class CodespaceClient extends TypedEmitter<CodespaceClientEvents> {
  /** The underlying Socket.IO socket (`socket.io` is its Manager). */
  readonly socket: CodespaceSocket;
  readonly #clientID: string;
  readonly #gapTimeoutMs: number;
  readonly #maxMessageBytes: number;
  /** Connections lost (transport close/error) in a row while the same batch was in flight. */
  #closeStreak = 0;
  #inFlightKey = "";
  #closedKey = "";
  #state: EditorState;
  /** The document at the synced version (what the server holds at `version`). */
  #confirmed: Text;
  #epoch = "";
  #mode: Mode = "view_only";
  #id = "";
  #codespace = "";
  #status: ConnectionStatus = "connecting";
  #initialized = false;
  /** A `connected` payload was received on the current connection. */
  #ready = false;
  #stopped = false;
  /** Bumped on every disconnect: acks from an older connection are ignored. */
  #session = 0;
  /** Bumped on every reset: acks of batches sent before it are not interpreted. */
  #resetGen = 0;
  /** On the next `connected`, reload from its snapshot whatever the epoch. */
  #forceReset = false;
  readonly #buffer = new UpdateBuffer<VersionedUpdate>();
  #inFlight = false;
  #pulling = false;
  /** Version an acked batch reached; no new batch until the synced version gets there. */
  #awaitVersion: number | null = null;
  /** Leading unconfirmed updates that were sent at least once (the server may hold them). */
  #sentPrefix = 0;
  #invalidStreak = 0;
  #pushScheduled = false;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #retryFns = new Set<() => void>();
  readonly #backoff = new Backoff();
  readonly #waiters = new Waiters();
  #settleFirst: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #lastConnected: ConnectedPayload | undefined;

  /**
   * Connects to `url + "/codespace"` (url: the server origin, e.g. `http://localhost:8888`) with
   * `auth: { token }` and resolves once the server's first `connected` payload is applied.
   * Rejects with a `CodespaceClientError` whose `code` is the server's `connect_error` `data.code`
   * when the handshake is refused (`missing_token`, `invalid_token`, `auth_unavailable`), or
   * `connect_failed` when Socket.IO gives up reconnecting (only with a finite
   * `socketOptions.reconnectionAttempts`; transport failures are otherwise retried forever).
   */
  static connect(url: string, token: string, opts: ConnectOptions = {}): Promise<CodespaceClient> {
    const client = new CodespaceClient(url, token, opts);
    return new Promise((resolve, reject) => {
      client.#settleFirst = { resolve: () => resolve(client), reject };
    });
  }

  private constructor(url: string, token: string, opts: ConnectOptions) {
    super();
    this.#clientID = opts.clientID ?? randomClientID();
    this.#gapTimeoutMs = opts.gapTimeoutMs ?? 200;
    this.#maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#state = createCollabState("", 0, this.#clientID);
    this.#confirmed = this.#state.doc;
    this.socket = io(url.replace(/\/+$/, "") + NAMESPACE, {
      transports: opts.transports ?? ["polling", "websocket"],
      forceNew: true,
      ...opts.socketOptions,
      auth: { token },
    });
    this.#listen();
  }

  /** The last `connected` payload (with its `users` presence list); undefined before the first. */
  get lastConnected(): ConnectedPayload | undefined {
    return this.#lastConnected;
  }
  /** The current local document (synced state plus unconfirmed local changes). */
  get text(): string {
    return this.#state.doc.toString();
  }
  /** Number of server updates applied (the version the local state is based on). */
  get version(): number {
    return getSyncedVersion(this.#state);
  }
  /** Id of the codespace's stored state generation (changes when it is recreated). */
  get epoch(): string {
    return this.#epoch;
  }
  get mode(): Mode {
    return this.#mode;
  }
  /** Socket id of the current connection (the `sender` others see). */
  get id(): string {
    return this.#id;
  }
  get codespace(): string {
    return this.#codespace;
  }
  /** The collab client id sent with every update. */
  get clientID(): string {
    return this.#clientID;
  }
  /** The headless EditorState (line separator "\n", collab extension). Replaced on every change. */
  get state(): EditorState {
    return this.#state;
  }
  get status(): ConnectionStatus {
    return this.#status;
  }
  /** Number of local updates not yet confirmed by the server. */
  get pending(): number {
    return sendableUpdates(this.#state).length;
  }

  /**
   * Applies a local change and schedules a push. Positions are UTF-16 code units against the
   * current local document; an array's changes all refer to the document before the call
   * (CodeMirror `ChangeSpec` semantics), e.g. `[{ from: 0, to: 2, insert: "hi" }]`.
   * @throws CodespaceClientError `forbidden` (view_only), `closed`, `invalid_payload` (a position
   *   splitting a surrogate pair, a lone surrogate); RangeError for out-of-range positions.
   */
  applyLocal(changes: readonly WireChange[] | ChangeSpec): void {
    if (this.#stopped) throw new CodespaceClientError("closed", "the client is closed");
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

  /**
   * Sends this client's selection ranges (UTF-16 offsets; 1 to 100 ranges) to the others.
   * Resolves on the server's ack; rejects with a CodespaceClientError (server code, `disconnected`,
   * `closed`) otherwise.
   */
  setSelection(selections: Selection[]): Promise<void> {
    if (this.#stopped) return Promise.reject(new CodespaceClientError("closed", "the client is closed"));
    if (!this.#ready) return Promise.reject(new CodespaceClientError("disconnected", "not connected"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new CodespaceClientError("disconnected", "no acknowledgement for create_selection")),
        SELECTION_ACK_TIMEOUT_MS,
      );
      this.socket.emit("create_selection", { selections }, (res) => {
        clearTimeout(timer);
        if (res.ok) resolve();
        else reject(new CodespaceClientError(res.error.code, res.error.message));
      });
    });
  }

  /** Resolves once no local update is unconfirmed and no batch is in flight. */
  whenSynced(): Promise<void> {
    if (this.#stopped) return Promise.reject(new CodespaceClientError("closed", "the client is closed"));
    return this.#waiters.wait(() => !this.#inFlight && sendableUpdates(this.#state).length === 0);
  }

  /** Resolves once the synced version is at least `version`. */
  waitForVersion(version: number): Promise<void> {
    if (this.#stopped) return Promise.reject(new CodespaceClientError("closed", "the client is closed"));
    return this.#waiters.wait(() => this.version >= version);
  }

  /** Disconnects for good; pending `whenSynced`/`waitForVersion` promises reject with `closed`. */
  close(): void {
    this.#stop(new CodespaceClientError("closed", "the client was closed"));
  }

  // ---- connection ----------------------------------------------------------------------------

  #listen(): void {
    const s = this.socket;
    s.on("connected", (p) => this.#onConnected(p));
    s.on("insert_value", (u) => this.#onBroadcast(u));
    s.on("create_selection", (p) => this.emit("selection", p));
    s.on("expired", (p) => {
      if (this.#stopped) return;
      this.emit("expired", { codespace: p.codespace });
      this.#stop(new CodespaceClientError("expired", `codespace ${p.codespace} expired`));
    });
    s.on("operation_error", (p) => this.#emitError(p.error, `${p.event}: `));
    s.on("disconnect", (reason) => this.#onDisconnect(reason));
    s.on("connect_error", (err) => this.#onConnectError(err as Error & { data?: Partial<WireError> }));
    s.io.on("reconnect_failed", () => {
      const err = new CodespaceClientError("connect_failed", "could not reach the server");
      if (!this.#initialized) this.#stop(err);
      else this.#report(err);
    });
  }

  #onConnected(p: ConnectedPayload): void {
    if (this.#stopped) return;
    this.#lastConnected = p;
    this.#id = p.id;
    this.#codespace = p.codespace;
    this.#mode = p.mode;
    this.#ready = true;
    this.#backoff.reset();
    this.#setStatus("connected");
    if (!this.#initialized) {
      this.#initialized = true;
      this.#epoch = p.epoch;
      this.#state = createCollabState(p.code, p.version, this.#clientID);
      this.#confirmed = this.#state.doc;
      this.#drain();
      this.#settleFirst?.resolve();
      this.#settleFirst = undefined;
      return;
    }
    if (p.epoch !== this.#epoch || this.#forceReset || p.version < this.version) {
      const reason: ResetReason = p.epoch !== this.#epoch ? "epoch" : "desync";
      this.#forceReset = false;
      this.#resetTo(p.version, p.code, p.epoch, reason);
      this.#drain();
    } else if (p.version > this.version) {
      this.#pull(); // its callback drains and resends
    } else {
      this.#drain();
    }
  }

  #onDisconnect(reason: string): void {
    if (this.#inFlight && (reason === "transport close" || reason === "transport error") && !this.#stopped) {
      this.#closeStreak = this.#inFlightKey === this.#closedKey ? this.#closeStreak + 1 : 1;
      this.#closedKey = this.#inFlightKey;
      if (this.#closeStreak >= MAX_CLOSE_STREAK) {
        const err = new CodespaceClientError(
          "message_too_large",
          `the connection closed ${this.#closeStreak} times right after sending the same insert_value batch ` +
            "(larger than the server's MAX_MESSAGE_BYTES?); stopped instead of resending it forever",
        );
        this.#report(err);
        this.#stop(err);
      }
    }
    this.#ready = false;
    this.#session++;
    this.#inFlight = false;
    this.#pulling = false;
    this.#awaitVersion = null;
    this.#buffer.clear();
    this.#clearSyncTimer();
    if (this.#stopped) return;
    this.#setStatus("disconnected");
    this.#waiters.check();
    // The server kicked us out (not for expiry, which stopped the client): Socket.IO does not
    // reconnect by itself in that case.
    if (reason === "io server disconnect") this.#retryLater(() => this.socket.connect());
  }

  #onConnectError(err: Error & { data?: Partial<WireError> }): void {
    if (this.#stopped) return;
    const code = err.data?.code;
    if (!code) return; // transport failure: the Manager retries by itself
    const error = new CodespaceClientError(code, err.data?.message ?? err.message);
    if (!this.#initialized) return this.#stop(error);
    if (code === "auth_unavailable" || code === "too_many_connections") {
      this.#retryLater(() => this.socket.connect());
    } else {
      this.#report(error);
      this.#stop(error);
    }
  }

  /** Drops the connection and opens a new one (its `connected` payload decides how to resync). */
  #reconnect(): void {
    if (this.#stopped) return;
    this.socket.disconnect();
    this.socket.connect();
  }

  #stop(err: CodespaceClientError): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearSyncTimer();
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryFns.clear();
    this.socket.disconnect();
    this.#setStatus("closed");
    this.#settleFirst?.reject(err);
    this.#settleFirst = undefined;
    this.#waiters.rejectAll(err);
  }

  #setStatus(status: ConnectionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.emit("status", { status });
  }

  // ---- receiving -----------------------------------------------------------------------------

  #onBroadcast(u: InsertValueBroadcast): void {
    if (this.#stopped) return;
    // Before the first `connected` the synced version is unknown: keep everything, filter later.
    this.#buffer.add(u, this.#initialized ? this.version : -1);
    this.#drain();
  }

  /** Applies the contiguous run of buffered updates after the synced version, then re-evaluates. */
  #drain(): void {
    if (!this.#ready) return;
    const run = this.#buffer.take(this.version);
    if (run.length && !this.#applyRemote(run)) return;
    this.#afterSync();
  }

  /** Applies consecutive server updates through `receiveUpdates`; false on a desync. */
  #applyRemote(run: VersionedUpdate[]): boolean {
    let converted: ReturnType<typeof updatesFromWire>;
    try {
      converted = updatesFromWire(run, this.#confirmed);
    } catch (err) {
      this.#desync(err);
      return false;
    }
    const before = sendableUpdates(this.#state).length;
    const received = receiveServerUpdates(this.#state, converted.updates);
    this.#state = received.state;
    this.#confirmed = converted.doc;
    const confirmedOwn = before - sendableUpdates(this.#state).length;
    this.#sentPrefix = Math.max(0, this.#sentPrefix - confirmedOwn);
    if (received.changes) this.emit("change", { remote: true, changes: received.changes });
    return true;
  }

  /** After the synced version moved: arm or clear the gap timer, resolve waiters, maybe push. */
  #afterSync(): void {
    const synced = this.version;
    if (this.#awaitVersion !== null && synced >= this.#awaitVersion) this.#awaitVersion = null;
    if (this.#buffer.hasGap(synced) || this.#awaitVersion !== null) {
      this.#syncTimer ??= setTimeout(() => {
        this.#syncTimer = undefined;
        this.#pull();
      }, this.#gapTimeoutMs);
    } else {
      this.#clearSyncTimer();
    }
    this.#waiters.check();
    this.#schedulePush();
  }

  #clearSyncTimer(): void {
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
  }

  /** Asks for every update after the synced version (or a snapshot) and applies it. */
  #pull(): void {
    if (!this.#ready || this.#pulling || this.#stopped || !this.socket.connected) return;
    this.#pulling = true;
    const session = this.#session;
    this.socket.emit("pull", { epoch: this.#epoch, version: this.version }, (res: PullAck) => {
      if (session !== this.#session) return;
      this.#pulling = false;
      if (!res.ok) return this.#onPullError(res.error);
      if ("code" in res) {
        this.#resetTo(res.version, res.code, this.#epoch, "version_too_old");
      } else {
        for (const u of res.updates) this.#buffer.add(u, this.version);
      }
      this.#drain();
    });
  }

  #onPullError(error: WireError): void {
    if (error.code === "invalid_version" || error.code === "version_too_old") {
      this.#forceReset = error.code === "version_too_old";
      this.#reconnect();
    } else if (TRANSIENT_CODES.has(error.code)) {
      this.#retryLater(() => this.#pull());
    } else {
      this.#emitError(error, "pull: ");
    }
  }

  /** Replaces the document by the server's state at `version`; unconfirmed changes are dropped. */
  #resetTo(version: number, code: string | Text, epoch: string, reason: ResetReason): void {
    const dropped = sendableUpdates(this.#state).length;
    this.#resetGen++;
    this.#epoch = epoch;
    this.#state = createCollabState(code, version, this.#clientID);
    this.#confirmed = this.#state.doc;
    this.#sentPrefix = 0;
    this.#awaitVersion = null;
    this.#invalidStreak = 0;
    this.#buffer.prune(version);
    this.emit("reset", { reason, version, epoch, dropped });
    this.emit("change", { remote: true });
    this.#waiters.check();
  }

  /** Something the server sent does not fit our copy: reload from a fresh `connected` snapshot. */
  #desync(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#report(new CodespaceClientError("desync", `out of sync with the server (${message}); reloading`));
    this.#forceReset = true;
    this.#reconnect();
  }

  // ---- pushing -------------------------------------------------------------------------------

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
    if (this.#stopped || !this.#ready || !this.socket.connected) return;
    if (this.#inFlight || this.#pulling || this.#awaitVersion !== null || this.#retryTimer) return;
    if (this.#mode !== "edit" || sendableUpdates(this.#state).length === 0) return;
    try {
      const compacted = compactUnconfirmed(this.#state, this.#confirmed, this.#sentPrefix);
      this.#state = compacted.state;
      this.#sentPrefix = compacted.kept;
    } catch (err) {
      this.#desync(err);
      return;
    }
    const pending = sendableUpdates(this.#state);
    if (pending.length === 0) return this.#waiters.check();
    const updates: WireUpdate[] = pending.map((u) => ({ clientID: u.clientID, changes: changesToWire(u.changes) }));
    const json = JSON.stringify(updates);
    // UTF-8 is at most 3 bytes per UTF-16 code unit: measure exactly only when it may matter
    const bytes = json.length * 3 + 256 > this.#maxMessageBytes ? new TextEncoder().encode(json).length + 256 : 0;
    if (bytes > this.#maxMessageBytes) {
      this.#emitError(
        { code: "message_too_large", message: `the batch is about ${bytes} bytes, more than maxMessageBytes (${this.#maxMessageBytes})` },
        "insert_value not sent, local changes dropped: ",
      );
      this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
      return this.#afterSync();
    }
    this.#inFlightKey = `${this.#epoch}:${this.version}:${json.length}`;
    this.#inFlight = true;
    this.#sentPrefix = pending.length;
    const session = this.#session;
    const gen = this.#resetGen;
    this.socket.emit("insert_value", { epoch: this.#epoch, version: this.version, updates }, (res: InsertValueAck) =>
      this.#onInsertAck(res, session, gen),
    );
  }

  #onInsertAck(res: InsertValueAck, session: number, gen: number): void {
    if (session !== this.#session) return; // that connection is gone; the next `connected` resyncs
    this.#inFlight = false;
    this.#closeStreak = 0;
    if (gen !== this.#resetGen) return this.#afterSync(); // the batch predates a reset
    if (res.ok) {
      this.#invalidStreak = 0;
      this.#backoff.reset();
      if (res.version > this.version) this.#awaitVersion = res.version;
      return this.#afterSync();
    }
    const { code } = res.error;
    if (code === "invalid_version") {
      if (++this.#invalidStreak >= MAX_INVALID_STREAK) {
        this.#emitError(res.error, "insert_value refused repeatedly, local changes dropped: ");
        this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
        return this.#afterSync();
      }
      this.#pull(); // then resend what is still unconfirmed
    } else if (code === "version_too_old") {
      this.#pull(); // answers with a snapshot
    } else if (TRANSIENT_CODES.has(code)) {
      this.#retryLater(() => this.#flush());
      this.#waiters.check();
    } else {
      // Refused for good (invalid_payload, forbidden, doc_too_large): drop what cannot be sent.
      this.#emitError(res.error, "insert_value refused, local changes dropped: ");
      this.#resetTo(this.version, this.#confirmed, this.#epoch, "rejected");
      this.#afterSync();
    }
  }

  /** Runs `fn` after the next backoff delay (several requests share one timer). */
  #retryLater(fn: () => void): void {
    if (this.#stopped) return;
    this.#retryFns.add(fn);
    this.#retryTimer ??= setTimeout(() => {
      this.#retryTimer = undefined;
      const fns = [...this.#retryFns];
      this.#retryFns.clear();
      for (const f of fns) f();
    }, this.#backoff.next());
  }

  #emitError(error: WireError, prefix = ""): void {
    this.#report(new CodespaceClientError(error.code, prefix + error.message));
  }

  /** Emits `error`; logs it instead when nobody listens, so failures are never silent. */
  #report(err: CodespaceClientError): void {
    if (this.listenerCount("error") === 0) console.error(err);
    else this.emit("error", err);
  }
}
