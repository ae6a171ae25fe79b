/**
 * Public option and event types of `CodespaceClient`.
 */
import type { ManagerOptions, SocketOptions } from "socket.io-client";
import type { ChangeSet } from "@codemirror/state";
import type { Mode, SelectionBroadcast, ServerLimits } from "../protocol/events.js";
import type { CodespaceClientError } from "./errors.js";

/**
 * The server's limits on one `insert_value` that the client splits its updates by: the count limits
 * of the protocol's ServerLimits (the message size has its own option, `maxMessageBytes`).
 */
export type BatchLimits = Omit<ServerLimits, "maxMessageBytes">;

export interface ConnectOptions {
  /** Socket.IO transports, in order of preference. Default `["polling", "websocket"]` (upgrade). */
  transports?: ("polling" | "websocket")[];
  /**
   * How long (ms) a version gap in received updates, or an acked batch whose broadcasts have not
   * all arrived, may persist before the client `pull`s. Default 200.
   */
  gapTimeoutMs?: number;
  /** collab client id sent with every update (default: a random one). */
  clientID?: string;
  /**
   * Largest `insert_value` message the client sends, bytes: a bigger batch is not sent (error
   * `message_too_large`, local changes dropped). Default: the server's MAX_MESSAGE_BYTES as it
   * announces it in `connected` (`limits`), else 4194304 (the server's default).
   */
  maxMessageBytes?: number;
  /**
   * The server's limits on a batch (its MAX_CHANGES_PER_UPDATE, MAX_CHANGES_PER_BATCH,
   * MAX_UPDATES_PER_BATCH). Default: what the server announces in `connected` (`limits`), else the
   * server's defaults (1000, 2000, 1000). A local update with more changes (a replace-all) is sent as
   * several updates, and a batch that would exceed a limit goes as its first updates, the rest after
   * they are confirmed.
   */
  limits?: Partial<BatchLimits>;
  /**
   * How long an acknowledgement of `insert_value` or `pull` may take, ms (socket.io-client's
   * `timeout()`); past it the client drops the connection and resyncs on a new one (nothing is lost:
   * a resent batch is deduplicated). Default 60000.
   */
  ackTimeoutMs?: number;
  /**
   * Display name shown to the others (presence), sent as `auth.name` at every handshake: at most 40
   * characters. To change it later, set `client.socket.auth.name`: it is sent at the next handshake.
   */
  name?: string;
  /**
   * Ask for batched broadcasts (`auth.batches`): one `insert_value` per commit, applied in one go
   * (one `change` event, one editor transaction) instead of one per update. Default true for
   * `CodespaceClient` (false for a bare `CodespaceConnection`); a server without batches sends one
   * per update, which the client handles the same way.
   */
  batches?: boolean;
  /** Extra Socket.IO options (merged last, except `auth`). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/**
 * Connection state: `connecting` (before the first `connected`), `connected` (joined, in sync or
 * syncing), `disconnected` (Socket.IO is reconnecting), `closed` (stopped for good: `close()`,
 * expiry or a refused handshake).
 */
export type ConnectionStatus = "connecting" | "connected" | "disconnected" | "closed";

/**
 * Why the document was replaced by the server's state: `epoch` (the codespace was recreated),
 * `version_too_old` (history no longer reaches the client's version), `rejected` (the server refused
 * the client's pending changes for good), `desync` (an update did not fit; reloaded).
 */
export type ResetReason = "epoch" | "version_too_old" | "rejected" | "desync";

export interface ResetEvent {
  reason: ResetReason;
  /** The version and epoch of the snapshot now held. */
  version: number;
  epoch: string;
  /** Number of unconfirmed local updates that were dropped. */
  dropped: number;
  /**
   * Number of local updates never sent that were carried onto the snapshot instead (on
   * `version_too_old` and `epoch`; re-applied as one new unconfirmed update and sent). 0 otherwise.
   */
  kept: number;
}

export interface CodespaceClientEvents {
  /**
   * After any change of the document; `remote` is false for `applyLocal`. `changes`, for remote
   * updates, maps the previous local document to the new one (absent after a reset: the whole
   * document was replaced).
   */
  change: { remote: boolean; changes?: ChangeSet };
  /** The document was replaced by the server's state; unconfirmed local changes were dropped. */
  reset: ResetEvent;
  /** The codespace expired or was deleted; the client has stopped. */
  expired: { codespace: string };
  /** Another socket's selection (positions in UTF-16 code units of the sender's document). */
  selection: SelectionBroadcast;
  /** A failure the client cannot fix by itself (a refused batch, a failed reconnect, ...). */
  error: CodespaceClientError;
  /** The connection state changed. */
  status: { status: ConnectionStatus };
}

export type { Mode };
