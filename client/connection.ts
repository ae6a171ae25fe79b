/**
 * `CodespaceConnection`: the transport layer of the client. It owns the Socket.IO socket of the
 * `/codespace` namespace (docs/protocol.md, "Handshake"), decides what a refused handshake or a
 * dropped connection means, and turns acknowledgements into promises bounded by a timeout
 * (socket.io-client's `timeout()`). It knows nothing of documents: the sync engine
 * (sync-engine.ts) does.
 *
 * Connection state (`status`): `connecting` (before the first `connected` payload), `connected`
 * (its `connected` payload arrived), `disconnected` (Socket.IO or this layer is reconnecting),
 * `closed` (for good).
 *
 * Policy, as before the split:
 * - a handshake refused before the first `connected` closes the connection with the server's code;
 *   later, `auth_unavailable`, `too_many_connections` and `store_unavailable` are retried after a backoff, other codes
 *   close it; transport failures are retried by Socket.IO's Manager;
 * - a disconnect by the server (`io server disconnect`: Socket.IO does not reconnect by itself) is
 *   retried after a backoff;
 * - `reconnect_failed` (finite `reconnectionAttempts` only) closes it before the first `connected`,
 *   and is reported after.
 */
import { io, type Socket } from "socket.io-client";
import { NAMESPACE } from "../protocol/constants.js";
import type { WireError } from "../protocol/errors.js";
import type {
  BatchedServerToClientEvents,
  ClientToServerEvents,
  ConnectedPayload,
  CreateSelectionAck,
  CreateSelectionPayload,
  ExpiredPayload,
  HandshakeAuth,
  InsertValueAck,
  InsertValueBroadcast,
  InsertValuePayload,
  OperationErrorPayload,
  PullAck,
  PullPayload,
  SelectionBroadcast,
} from "../protocol/events.js";
import { isBatchBroadcast, unbatch } from "../protocol/wire.js";
import { Backoff } from "./backoff.js";
import { TypedEmitter } from "./emitter.js";
import { CodespaceClientError } from "./errors.js";
import type { ConnectionStatus, ConnectOptions } from "./types.js";

/**
 * The typed Socket.IO socket (exposed as `client.socket`). Typed with the batched event map:
 * `insert_value` arrives as one batch per commit when the handshake asked for batches
 * (`CodespaceClient`'s default).
 */
export type CodespaceSocket = Socket<BatchedServerToClientEvents, ClientToServerEvents>;

/** Default of `ackTimeoutMs`: how long an acknowledgement may take before the request fails, ms. */
export const DEFAULT_ACK_TIMEOUT_MS = 60_000;

export interface ConnectionEvents {
  /** A `connected` payload: the socket joined its codespace (first time or after a reconnect). */
  connected: ConnectedPayload;
  /** The socket lost its connection (`reason`: Socket.IO's disconnect reason). */
  disconnected: { reason: string };
  /**
   * An accepted update (broadcast to everyone in the codespace, the submitter included), from a
   * server that sends one `insert_value` per update (batches not asked for, or not supported).
   */
  update: InsertValueBroadcast;
  /** The accepted updates of one commit, in version order (one batched `insert_value`, unbatched). */
  updates: InsertValueBroadcast[];
  /** Another socket's selection. */
  selection: SelectionBroadcast;
  /** The codespace expired or was deleted. */
  expired: ExpiredPayload;
  /** A request sent without an ack callback failed (the reference client always sends one). */
  operation_error: OperationErrorPayload;
  /** A failure; `fatal`: the connection closed itself because of it. */
  error: { error: CodespaceClientError; fatal: boolean };
  status: { status: ConnectionStatus };
}

export type ConnectionOptions = Pick<ConnectOptions, "transports" | "socketOptions" | "ackTimeoutMs" | "name" | "batches">;

/**
 * Handshake refusals that pass (docs/protocol.md: "retry later"): a connection that had joined
 * retries them after its backoff; anything else is final.
 */
const RETRY_LATER: ReadonlySet<string> = new Set(["auth_unavailable", "too_many_connections", "store_unavailable", "codespace_unavailable"]);

export class CodespaceConnection extends TypedEmitter<ConnectionEvents> {
  readonly socket: CodespaceSocket;
  readonly #ackTimeoutMs: number;
  readonly #backoff = new Backoff();
  #status: ConnectionStatus = "connecting";
  /** A `connected` payload arrived at least once (handshake refusals are final before that). */
  #joined = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Opens `url + "/codespace"` (url: the server origin) with `auth: { token }`, plus `name` when
   * given and `batches: true` when `opts.batches` is true. Without batches (this layer's default,
   * so that its users keep receiving `update` events) every accepted update is an `update` event;
   * with them, a commit is one `updates` event (`CodespaceClient` asks for them by default).
   */
  constructor(url: string, token: string, opts: ConnectionOptions = {}) {
    super();
    this.#ackTimeoutMs = opts.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    const auth: HandshakeAuth = { token };
    if (opts.batches) auth.batches = true;
    if (opts.name) auth.name = opts.name;
    this.socket = io(url.replace(/\/+$/, "") + NAMESPACE, {
      transports: opts.transports ?? ["polling", "websocket"],
      forceNew: true,
      ...opts.socketOptions,
      auth,
    });
    this.#listen();
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  /** True while the socket is connected and its `connected` payload has arrived. */
  get ready(): boolean {
    return this.#status === "connected" && this.socket.connected;
  }

  /** Sends a batch; resolves with the ack. Rejects with `disconnected` on a disconnect or after `ackTimeoutMs`. */
  insertValue(payload: InsertValuePayload): Promise<InsertValueAck> {
    return this.#request("insert_value", payload);
  }

  /** Asks for the updates after a version (or a snapshot). Rejects like `insertValue`. */
  pull(payload: PullPayload): Promise<PullAck> {
    return this.#request("pull", payload);
  }

  /** Sends this socket's selection ranges. Rejects like `insertValue` (`timeoutMs` instead of `ackTimeoutMs`). */
  createSelection(payload: CreateSelectionPayload, timeoutMs = this.#ackTimeoutMs): Promise<CreateSelectionAck> {
    return this.#request("create_selection", payload, timeoutMs);
  }

  /** Drops the connection and opens a new one (the next `connected` payload decides how to resync). */
  reconnect(): void {
    if (this.#status === "closed") return;
    this.socket.disconnect();
    this.socket.connect();
  }

  /** Disconnects for good. */
  close(): void {
    if (this.#status === "closed") return;
    this.#setStatus("closed");
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.socket.disconnect();
  }

  #request<A>(event: "insert_value" | "pull" | "create_selection", payload: object, timeoutMs = this.#ackTimeoutMs): Promise<A> {
    const timed = this.socket.timeout(timeoutMs) as unknown as { emitWithAck(event: string, payload: object): Promise<A> };
    return timed.emitWithAck(event, payload).catch((err: Error) => {
      throw new CodespaceClientError("disconnected", `no acknowledgement for ${event} (${err.message})`);
    });
  }

  #listen(): void {
    const s = this.socket;
    s.on("connected", (p) => {
      if (this.#status === "closed") return;
      this.#backoff.reset();
      this.#joined = true;
      this.#setStatus("connected");
      this.emit("connected", p);
    });
    s.on("insert_value", (p) => {
      if (this.#status === "closed") return;
      if (isBatchBroadcast(p)) this.emit("updates", unbatch(p));
      else this.emit("update", p);
    });
    s.on("create_selection", (p) => this.#status !== "closed" && this.emit("selection", p));
    s.on("expired", (p) => this.#status !== "closed" && this.emit("expired", p));
    s.on("operation_error", (p) => this.#status !== "closed" && this.emit("operation_error", p));
    s.on("disconnect", (reason) => {
      if (this.#status !== "closed") this.#setStatus("disconnected");
      this.emit("disconnected", { reason });
      // The server kicked us out: Socket.IO does not reconnect by itself in that case.
      if (reason === "io server disconnect") this.#retryLater();
    });
    s.on("connect_error", (err) => this.#onConnectError(err as Error & { data?: Partial<WireError> }));
    s.io.on("reconnect_failed", () => {
      if (this.#status === "closed") return;
      this.#fail(new CodespaceClientError("connect_failed", "could not reach the server"), !this.#joined);
    });
  }

  #onConnectError(err: Error & { data?: Partial<WireError> }): void {
    if (this.#status === "closed") return;
    const code = err.data?.code;
    if (!code) return; // transport failure: the Manager retries by itself
    const error = new CodespaceClientError(code, err.data?.message ?? err.message);
    if (this.#joined && RETRY_LATER.has(code)) this.#retryLater();
    else this.#fail(error, true);
  }

  #fail(error: CodespaceClientError, fatal: boolean): void {
    if (fatal) this.close();
    this.emit("error", { error, fatal });
  }

  /** Reconnects after the next backoff delay (one pending retry at a time). */
  #retryLater(): void {
    if (this.#status === "closed" || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#status !== "closed" && !this.socket.connected) this.socket.connect();
    }, this.#backoff.next());
  }

  #setStatus(status: ConnectionStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.emit("status", { status });
  }
}
