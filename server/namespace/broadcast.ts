/**
 * Server-to-client broadcasts of the `/codespace` namespace made outside the event pipelines
 * (committed updates, expiry), and the count of broadcast deliveries.
 */
import type { Metrics } from "../metrics.js";
import type { InsertValueBatchBroadcast, InsertValueBroadcast, ServerToClientEvents } from "../protocol/events.js";
import { batchRoomOf, roomOf, type CodespaceNamespace, type CodespaceSocket } from "./types.js";

/**
 * Sends committed updates to this process's sockets of the codespace. Local only: every process
 * receives every commit from the store's commit feed, in commit order, and sends it to its own.
 *
 * Sockets that asked for batches (`auth.batches`, also in `batchRoomOf`) get ONE `insert_value`
 * per commit (`InsertValueBatchBroadcast`); the others one per update, exactly as before batches
 * existed. Each is a room broadcast, so Socket.IO encodes it once for all the sockets it reaches.
 */
export function broadcaster(nsp: CodespaceNamespace) {
  return (codespace: string, updates: InsertValueBroadcast[]): void => {
    if (updates.length === 0) return;
    const room = roomOf(codespace);
    const batchRoom = batchRoomOf(codespace);
    const rooms = nsp.adapter.rooms;
    const batched = rooms.get(batchRoom)?.size ?? 0;
    const all = rooms.get(room)?.size ?? 0; // every socket of the batch room is in the codespace's room
    if (batched > 0) {
      const batch: InsertValueBatchBroadcast = {
        version: updates[updates.length - 1]!.version,
        updates: updates.map((u) => ({ clientID: u.clientID, sender: u.sender, changes: u.changes })),
      };
      nsp.local.to(batchRoom).emit("insert_value", batch);
    }
    if (all > batched) {
      const single = batched > 0 ? nsp.local.to(room).except(batchRoom) : nsp.local.to(room);
      for (const u of updates) single.emit("insert_value", u);
    }
  };
}

/** Sends `expired` to this process's sockets of the codespace, then disconnects them. */
export function expireLocally(nsp: CodespaceNamespace, codespace: string): void {
  const local = nsp.local.in(roomOf(codespace));
  local.emit("expired", { codespace });
  // disconnect(false) keeps the transport open long enough to flush `expired` on long-polling too
  local.disconnectSockets(false);
}

/**
 * Sockets between joining their codespace's room and receiving `connected` (ids, transient: no
 * entry stays once the handshake ends). Their `connected` will carry the current epoch, so a
 * resync leaves them alone.
 */
export const joining = new Set<string>();

/**
 * Has this process's sockets of the codespace reload: closes their connections (the engine.io
 * transport; no DISCONNECT packet, so socket.io-client reconnects by itself and its `connected`
 * brings the current epoch, version and code). Sockets still `joining` are skipped. Returns how
 * many were closed.
 */
export function resyncLocally(nsp: CodespaceNamespace, codespace: string): number {
  let n = 0;
  for (const id of nsp.adapter.rooms.get(roomOf(codespace)) ?? []) {
    const socket = nsp.sockets.get(id);
    if (socket && !joining.has(id)) {
      socket.conn.close();
      n++;
    }
  }
  return n;
}

/**
 * Server events counted as broadcast deliveries (`codespace_broadcast_deliveries_total{event}`): one
 * per packet written to a socket, so a batched `insert_value` (a whole commit) counts once.
 */
const BROADCAST_EVENTS: ReadonlySet<string> = new Set<keyof ServerToClientEvents>(["insert_value", "create_selection", "user_joined", "user_left", "expired"]);

/**
 * Counts the broadcasts delivered to `socket`, whichever process made them (the adapter delivers a
 * remote process's broadcast to this process's sockets): Socket.IO's `onAnyOutgoing`, which the
 * adapter calls for every broadcast packet it writes to a socket.
 */
export function countDeliveries(socket: CodespaceSocket, metrics: Metrics): void {
  let counter = counters.get(metrics);
  if (!counter) {
    counter = (event: string) => {
      if (BROADCAST_EVENTS.has(event)) metrics.countDelivery(event);
    };
    counters.set(metrics, counter);
  }
  socket.onAnyOutgoing(counter);
}

/** One listener per Metrics, shared by every socket (no closure per connection). */
const counters = new WeakMap<Metrics, (event: string) => void>();
