/**
 * `CodespaceClient`: a typed client of the `/codespace` Socket.IO namespace (docs/protocol.md) that
 * keeps a headless CodeMirror `EditorState` in sync with the server through `@codemirror/collab`.
 * Runs in Node and browsers (no node-only imports).
 *
 * It composes two layers, each usable and tested alone: the connection (connection.ts: the socket,
 * handshake and reconnect policy, acks with timeouts) and the sync engine (sync-engine.ts: the
 * document, the collab rules, an explicit state). Units: positions and lengths in UTF-16 code
 * units; timeouts in milliseconds.
 */
import type { ChangeSpec, EditorState } from "@codemirror/state";
import type { ConnectedPayload, Mode, Selection, WireChange } from "../protocol/events.js";
import { CodespaceConnection, type CodespaceSocket } from "./connection.js";
import { TypedEmitter } from "./emitter.js";
import { CodespaceClientError } from "./errors.js";
import { SyncEngine, type SyncPhase } from "./sync-engine.js";
import type { CodespaceClientEvents, ConnectionStatus, ConnectOptions } from "./types.js";

export type { CodespaceSocket };

/** How long `setSelection` waits for its acknowledgement, ms. */
const SELECTION_ACK_TIMEOUT_MS = 10_000;

function randomClientID(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36);
}

export class CodespaceClient extends TypedEmitter<CodespaceClientEvents> {
  /** The underlying Socket.IO socket (`socket.io` is its Manager). */
  readonly socket: CodespaceSocket;
  readonly #connection: CodespaceConnection;
  readonly #engine: SyncEngine;
  #lastConnected: ConnectedPayload | undefined;
  #closed = false;
  #settleFirst: { resolve: () => void; reject: (err: Error) => void } | undefined;

  /**
   * Connects to `url + "/codespace"` (url: the server origin, e.g. `http://localhost:8888`) with
   * `auth: { token }` and resolves once the server's first `connected` payload is applied.
   * Rejects with a `CodespaceClientError` whose `code` is the server's `connect_error` `data.code`
   * when the handshake is refused (`missing_token`, `invalid_token`, `auth_unavailable`, ...), or
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
    const connection = new CodespaceConnection(url, token, { ...opts, batches: opts.batches ?? true });
    const engine = new SyncEngine(connection, {
      clientID: opts.clientID ?? randomClientID(),
      ...(opts.gapTimeoutMs !== undefined && { gapTimeoutMs: opts.gapTimeoutMs }),
      ...(opts.maxMessageBytes !== undefined && { maxMessageBytes: opts.maxMessageBytes }),
      ...(opts.limits !== undefined && { limits: opts.limits }),
    });
    this.#connection = connection;
    this.#engine = engine;
    this.socket = connection.socket;
    connection.on("status", (e) => this.emit("status", e));
    connection.on("connected", (p) => {
      if (this.#closed) return;
      this.#lastConnected = p;
      engine.connected(p);
      this.#settleFirst?.resolve();
      this.#settleFirst = undefined;
    });
    connection.on("disconnected", ({ reason }) => engine.disconnected(reason));
    connection.on("update", (u) => engine.received(u));
    connection.on("updates", (us) => engine.receivedAll(us));
    connection.on("selection", (p) => this.emit("selection", p));
    connection.on("expired", (p) => {
      if (this.#closed) return;
      this.emit("expired", { codespace: p.codespace });
      this.#stop(new CodespaceClientError("expired", `codespace ${p.codespace} expired`));
    });
    connection.on("operation_error", (p) => this.#report(new CodespaceClientError(p.error.code, `${p.event}: ${p.error.message}`)));
    connection.on("error", ({ error, fatal }) => {
      if (!fatal) return this.#report(error);
      // A refusal after the first `connected` is reported; before it, `connect()` rejects with it.
      if (!this.#settleFirst) this.#report(error);
      this.#stop(error);
    });
    engine.on("change", (e) => this.emit("change", e));
    engine.on("reset", (e) => this.emit("reset", e));
    engine.on("error", (err) => this.#report(err));
    engine.on("fatal", (err) => this.#stop(err));
  }

  /** The last `connected` payload (with its `users` presence list); undefined before the first. */
  get lastConnected(): ConnectedPayload | undefined {
    return this.#lastConnected;
  }
  /** The current local document (synced state plus unconfirmed local changes). */
  get text(): string {
    return this.#engine.state.doc.toString();
  }
  /** Number of server updates applied (the version the local state is based on). */
  get version(): number {
    return this.#engine.version;
  }
  /** Id of the codespace's stored state generation (changes when it is recreated). */
  get epoch(): string {
    return this.#engine.epoch;
  }
  get mode(): Mode {
    return this.#engine.mode;
  }
  /** Socket id of the current connection (the `sender` others see). */
  get id(): string {
    return this.#lastConnected?.id ?? "";
  }
  get codespace(): string {
    return this.#lastConnected?.codespace ?? "";
  }
  /** The collab client id sent with every update. */
  get clientID(): string {
    return this.#engine.clientID;
  }
  /** The headless EditorState (line separator "\n", collab extension). Replaced on every change. */
  get state(): EditorState {
    return this.#engine.state;
  }
  get status(): ConnectionStatus {
    return this.#connection.status;
  }
  /** The sync engine's phase (unloaded, offline, online with its pull and push state, closed). */
  get phase(): Readonly<SyncPhase> {
    return this.#engine.phase;
  }
  /** Number of local updates not yet confirmed by the server. */
  get pending(): number {
    return this.#engine.pending;
  }

  /**
   * Applies a local change and schedules a push. Positions are UTF-16 code units against the
   * current local document; an array's changes all refer to the document before the call
   * (CodeMirror `ChangeSpec` semantics), e.g. `[{ from: 0, to: 2, insert: "hi" }]`.
   * @throws CodespaceClientError `forbidden` (view_only), `closed`, `invalid_payload` (a position
   *   splitting a surrogate pair, a lone surrogate); RangeError for out-of-range positions.
   */
  applyLocal(changes: readonly WireChange[] | ChangeSpec): void {
    this.#engine.applyLocal(changes);
  }

  /**
   * Sends this client's selection ranges (UTF-16 offsets; 1 to 100 ranges) to the others.
   * Resolves on the server's ack; rejects with a CodespaceClientError (server code, `disconnected`,
   * `closed`) otherwise.
   */
  async setSelection(selections: Selection[]): Promise<void> {
    if (this.#closed) throw new CodespaceClientError("closed", "the client is closed");
    if (!this.#connection.ready) throw new CodespaceClientError("disconnected", "not connected");
    const res = await this.#connection.createSelection({ selections }, SELECTION_ACK_TIMEOUT_MS);
    if (!res.ok) throw new CodespaceClientError(res.error.code, res.error.message);
  }

  /** Resolves once no local update is unconfirmed and no batch is in flight. */
  whenSynced(): Promise<void> {
    return this.#engine.whenSynced();
  }

  /** Resolves once the synced version is at least `version`. */
  waitForVersion(version: number): Promise<void> {
    return this.#engine.waitForVersion(version);
  }

  /** Disconnects for good; pending `whenSynced`/`waitForVersion` promises reject with `closed`. */
  close(): void {
    this.#stop(new CodespaceClientError("closed", "the client was closed"));
  }

  #stop(err: CodespaceClientError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#engine.close(err);
    this.#connection.close();
    this.#settleFirst?.reject(err);
    this.#settleFirst = undefined;
  }

  /** Emits `error`; logs it instead when nobody listens, so failures are never silent. */
  #report(err: CodespaceClientError): void {
    if (this.listenerCount("error") === 0) console.error(err);
    else this.emit("error", err);
  }
}
