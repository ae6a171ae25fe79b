/**
 * Typed Socket.IO event maps for the `/codespace` namespace (the wire contract; docs/protocol.md).
 *
 * All positions and lengths are UTF-16 code units, the way browsers and CodeMirror count.
 * Versions count accepted updates since the codespace's stored state was created (epoch).
 * Names: a *change* is one replacement, an *update* is one client's list of changes (with its
 * `clientID`), a *batch* is the updates of one `insert_value`, a *snapshot* is `{ version, code }`.
 */
import type { WireError } from "./errors.js";

/** Access mode of a connection, decided at the handshake. */
export type Mode = "edit" | "view_only";

/** One replacement: delete `[from, to)` of the document before the update, insert `insert` there. */
export interface WireChange {
  from: number;
  to: number;
  insert: string;
}

/** One update as a client submits it: changes sorted by `from`, non-overlapping, against the doc before it. */
export interface WireUpdate {
  clientID: string;
  changes: WireChange[];
}

/** One accepted update as history returns it: `version` is the version after it. */
export interface VersionedUpdate extends WireUpdate {
  version: number;
}

export interface InsertValuePayload {
  epoch: string;
  /** The version the first update is based on. */
  version: number;
  updates: WireUpdate[];
}

export interface Selection {
  anchor: number;
  head: number;
}

export interface CreateSelectionPayload {
  selections: Selection[];
}

export interface PullPayload {
  epoch: string;
  /** Return every update after this version. */
  version: number;
}

export type Ack<T extends object> = ({ ok: true } & T) | { ok: false; error: WireError };

export type InsertValueAck = Ack<{ version: number }>;
export type CreateSelectionAck = Ack<Record<never, never>>;
/** Either the updates after the asked version, or a snapshot (`code` at `version`) where history no longer reaches. */
export type PullAck = Ack<{ version: number; updates: VersionedUpdate[] } | { version: number; code: string }>;

/** Emitted to a socket once it has joined its codespace's room. */
export interface ConnectedPayload {
  /** The socket id (the `sender` others see). */
  id: string;
  codespace: string;
  mode: Mode;
  /** Random id fixed when the codespace's stored state was created. */
  epoch: string;
  version: number;
  code: string;
  /** Everyone in the codespace, on every instance, this socket included (presence). */
  users: UserInfo[];
  /**
   * The codespace's TTL, seconds: it is deleted this long after its last update (or its creation)
   * (CODESPACE_EXPIRE_UPDATE, or TMP_CODESPACE_EXPIRE_UPDATE for `tmp-` codespaces).
   */
  ttl: number;
  /**
   * The server's limits on an `insert_value` (its MAX_CHANGES_PER_UPDATE, MAX_CHANGES_PER_BATCH,
   * MAX_UPDATES_PER_BATCH and MAX_MESSAGE_BYTES, bytes): a client sizes and splits its batches by
   * them. Absent from servers older than this field: assume DEFAULT_LIMITS (protocol/constants.ts).
   */
  limits?: ServerLimits;
}

/** What a server accepts in one `insert_value` (ConnectedPayload.limits). */
export interface ServerLimits {
  maxChangesPerUpdate: number;
  maxChangesPerBatch: number;
  maxUpdatesPerBatch: number;
  /** Largest Socket.IO message, bytes. */
  maxMessageBytes: number;
}

/** A participant of a codespace (presence): one per socket. */
export interface UserInfo {
  /** Socket id (the `sender` of its updates and selections). */
  id: string;
  mode: Mode;
  /** Display name: the site API's, else the one the client chose in `auth.name` (at most 40 characters). */
  name?: string;
}

/** Sent to the others when a socket leaves the codespace. */
export interface UserLeftPayload {
  id: string;
}

/**
 * The handshake's `auth` object (`io(url + NAMESPACE, { auth })`): `token` is required, the rest
 * optional (docs/protocol.md, "Handshake").
 */
export interface HandshakeAuth {
  /** Share token or `tmp-<id>` token. */
  token: string;
  /** Display name for presence: at most 40 characters, no control characters. */
  name?: string;
  /**
   * `true`: receive `insert_value` broadcasts as batches, ONE per commit
   * (`InsertValueBatchBroadcast`) instead of one per accepted update (`InsertValueBroadcast`).
   * Absent or `false`: one per update, as before this option existed. Anything else is refused
   * with `invalid_payload`. A server that predates it ignores it and sends one per update, so a
   * client that asks must accept both shapes (`isBatchBroadcast`).
   */
  batches?: boolean;
}

/**
 * Broadcast once per accepted update to everyone in the codespace, the sender included (to sockets
 * that did not ask for batches, `HandshakeAuth.batches`).
 */
export interface InsertValueBroadcast extends VersionedUpdate {
  /** Socket id of the submitter. */
  sender: string;
}

/** One accepted update inside a batch broadcast: its version comes from its place in the batch. */
export interface BatchedUpdate extends WireUpdate {
  /** Socket id of the submitter. */
  sender: string;
}

/**
 * Broadcast once per commit to the sockets that asked for batches (`HandshakeAuth.batches`): every
 * accepted update of the commit, in version order. `version` is the version after the LAST update,
 * so `updates[i]` became version `version - updates.length + 1 + i` (`unbatch` in protocol/wire.ts):
 * exactly the `InsertValueBroadcast`s a socket without batches receives for that commit, in the same
 * order. `updates` is never empty.
 */
export interface InsertValueBatchBroadcast {
  version: number;
  updates: BatchedUpdate[];
}

export interface SelectionBroadcast {
  sender: string;
  selections: Selection[];
}

export interface ExpiredPayload {
  codespace: string;
}

/** Sent instead of an ack when an event arrives without a callback and fails. */
export interface OperationErrorPayload {
  event: string;
  error: WireError;
}

export interface ClientToServerEvents {
  insert_value: (payload: InsertValuePayload, ack?: (res: InsertValueAck) => void) => void;
  create_selection: (payload: CreateSelectionPayload, ack?: (res: CreateSelectionAck) => void) => void;
  pull: (payload: PullPayload, ack?: (res: PullAck) => void) => void;
}

export interface ServerToClientEvents {
  connected: (payload: ConnectedPayload) => void;
  /** One per accepted update (a socket that asked for batches gets `BatchedServerToClientEvents`). */
  insert_value: (payload: InsertValueBroadcast) => void;
  create_selection: (payload: SelectionBroadcast) => void;
  expired: (payload: ExpiredPayload) => void;
  operation_error: (payload: OperationErrorPayload) => void;
  user_joined: (payload: UserInfo) => void;
  user_left: (payload: UserLeftPayload) => void;
}

/**
 * What a socket that asked for batches (`HandshakeAuth.batches`) receives: `insert_value` is one
 * batch per commit, or, from a server that predates batches, one update (tell them apart with
 * `isBatchBroadcast`). The server's own emit map (it sends both shapes).
 */
export type BatchedServerToClientEvents = Omit<ServerToClientEvents, "insert_value"> & {
  insert_value: (payload: InsertValueBatchBroadcast | InsertValueBroadcast) => void;
};
