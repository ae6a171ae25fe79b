/**
 * The `/codespace` namespace's socket types and room names, apart from the namespace's wiring so
 * that presence.ts and connection-cap.ts can use them without importing the namespace (no cycle).
 */
import type { Namespace, Socket } from "socket.io";
import type { SocketAuth } from "../hooks.js";
import type { ClientToServerEvents, ServerToClientEvents, UserInfo } from "../protocol/events.js";

/** Events between server processes (Socket.IO server-side emits through the adapter). */
export interface ServerSideEvents {
  /** presence.ts: each other process answers with its sockets in `room`. */
  presence_list(room: string, ack: (users: UserInfo[]) => void): void;
}

export type CodespaceSocket = Socket<ClientToServerEvents, ServerToClientEvents, ServerSideEvents, SocketAuth>;
export type CodespaceNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, ServerSideEvents, SocketAuth>;

/** Room of a codespace inside the namespace. */
export function roomOf(codespace: string): string {
  return `codespace:${codespace}`;
}
