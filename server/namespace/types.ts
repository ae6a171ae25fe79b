/**
 * The `/codespace` namespace's socket types and room names, apart from the namespace's wiring so
 * that presence.ts and connection-cap.ts can use them without importing the namespace (no cycle).
 */
import type { Namespace, Socket } from "socket.io";
import type { SocketAuth } from "../hooks.js";
import type { BatchedServerToClientEvents, ClientToServerEvents, UserInfo } from "../protocol/events.js";

/** Events between server processes (Socket.IO server-side emits through the adapter). */
export interface ServerSideEvents {
  /** presence.ts: each other process answers with its sockets in `room`. */
  presence_list(room: string, ack: (users: UserInfo[]) => void): void;
}

/** Typed with the batched event map: the server sends `insert_value` in both shapes (broadcast.ts). */
export type CodespaceSocket = Socket<ClientToServerEvents, BatchedServerToClientEvents, ServerSideEvents, SocketAuth>;
export type CodespaceNamespace = Namespace<ClientToServerEvents, BatchedServerToClientEvents, ServerSideEvents, SocketAuth>;

/** Room of a codespace inside the namespace. */
export function roomOf(codespace: string): string {
  return `codespace:${codespace}`;
}

/**
 * Sub-room of a codespace's sockets that asked for batched broadcasts (`auth.batches`: one
 * `insert_value` per commit). Its sockets are also in `roomOf(codespace)`, where selections,
 * presence and `expired` go.
 */
export function batchRoomOf(codespace: string): string {
  return `batches:${codespace}`; // a prefix, not a suffix: no codespace's roomOf can equal it
}
