/**
 * Public API of the codespace client (Node and browsers). See docs/protocol.md for the wire contract.
 */
export { CodespaceClient } from "./codespace-client.js";
export { CodespaceConnection, DEFAULT_ACK_TIMEOUT_MS, type CodespaceSocket, type ConnectionEvents, type ConnectionOptions } from "./connection.js";
export { SyncEngine, type PullState, type PushState, type SyncEngineEvents, type SyncEngineOptions, type SyncPhase, type SyncTransport } from "./sync-engine.js";
export { CodespaceClientError, type ClientErrorCode } from "./errors.js";
export type {
  CodespaceClientEvents,
  ConnectionStatus,
  BatchLimits,
  ConnectOptions,
  ResetEvent,
  ResetReason,
} from "./types.js";
export { changesFromWire, changesToWire, updatesFromWire, isBatchBroadcast, unbatch, LINE_SEPARATOR, TMP_TOKEN_PREFIX, NAMESPACE, DEFAULT_LIMITS, ErrorCodes, type ErrorCode, type WireError } from "../protocol/index.js";
export { UpdateBuffer, type Versioned } from "./update-buffer.js";
export { PresenceTracker, type PresenceEvents, type PresenceUser } from "./presence.js";
export type { Listener } from "./emitter.js";
export type {
  Mode,
  Selection,
  SelectionBroadcast,
  UserInfo,
  WireChange,
  WireUpdate,
  VersionedUpdate,
  InsertValueBroadcast,
  InsertValueBatchBroadcast,
  BatchedUpdate,
  HandshakeAuth,
  ConnectedPayload,
  ServerLimits,
} from "../protocol/events.js";
