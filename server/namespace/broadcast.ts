/**
 * Server-to-client broadcasts of the `/codespace` namespace made outside the event pipelines
 * (committed updates, expiry), and the count of broadcast deliveries.
 */
import type { Metrics } from "../metrics.js";
import type { InsertValueBroadcast, ServerToClientEvents } from "../protocol/events.js";
import { roomOf, type CodespaceNamespace, type CodespaceSocket } from "./types.js";

/**
 * Sends committed updates to this process's sockets of the codespace. Local only: every process
 * receives every commit from the store's commit feed, in commit order, and sends it to its own.
 */
export function broadcaster(nsp: CodespaceNamespace) {
  return (codespace: string, updates: InsertValueBroadcast[]): void => {
    const room = nsp.local.to(roomOf(codespace));
    for (const u of updates) room.emit("insert_value", u);
  };
}

/** Sends `expired` to this process's sockets of the codespace, then disconnects them. */
export function expireLocally(nsp: CodespaceNamespace, codespace: string): void {
  const local = nsp.local.in(roomOf(codespace));
  local.emit("expired", { codespace });
  // disconnect(false) keeps the transport open long enough to flush `expired` on long-polling too
  local.disconnectSockets(false);
}

/** Server events counted as broadcast deliveries (`codespace_broadcast_deliveries_total{event}`). */
const BROADCAST_EVENTS: ReadonlySet<string> = new Set<keyof ServerToClientEvents>(["insert_value", "create_selection", "user_joined", "user_left", "expired"]);

/**
 * Counts the broadcasts delivered to `socket`, whichever process made them (the adapter delivers a
 * remote process's broadcast to this process's sockets): Socket.IO's `onAnyOutgoing`, which the
 * adapter calls for every broadcast packet it writes to a socket.
 */
export function countDeliveries(socket: CodespaceSocket, metrics: Metrics): void {
  socket.onAnyOutgoing((event: string) => {
    if (BROADCAST_EVENTS.has(event)) metrics.broadcastDeliveries.inc({ event });
  });
}
