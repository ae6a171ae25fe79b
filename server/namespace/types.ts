/**
 * The `/codespace` namespace's socket types and room names, apart from the namespace's wiring so
 * that presence.ts and connection-cap.ts can use them without importing the namespace (no cycle).
 */
import type { Namespace, Socket } from "socket.io";
import type { SocketAuth } from "../hooks.js";
import type { ClientToServerEvents, ServerToClientEvents } from "../protocol/events.js";

export type CodespaceSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketAuth>;
export type CodespaceNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketAuth>;

/** Room of a codespace inside the namespace. */
export function roomOf(codespace: string): string {
  return `codespace:${codespace}`;
}
