/**
 * Evidence that edits really overlapped, seen from one client's socket: counts the `insert_value`
 * batches this socket sent during which an update of ANOTHER client beyond the batch's base version
 * was broadcast. Such a batch was concurrent with that update, so the server rebased one over the
 * other. Tests that claim concurrency assert this is above 0.
 */
import type { AnySocket } from "./socket.js";

export interface OverlapCounter {
  /** Batches of this socket that overlapped another client's update, so far. */
  count(): number;
}

export function countOverlaps(socket: AnySocket): OverlapCounter {
  let overlaps = 0;
  let inFlight: { base: number; clientIDs: Set<string>; overlapped: boolean } | undefined;
  socket.onAnyOutgoing((event: string, payload: { version?: unknown; updates?: { clientID?: unknown }[] }) => {
    if (event !== "insert_value" || typeof payload?.version !== "number" || !Array.isArray(payload.updates)) return;
    inFlight = { base: payload.version, clientIDs: new Set(payload.updates.map((u) => String(u.clientID))), overlapped: false };
  });
  socket.on("insert_value", (b: { version: number; clientID: string }) => {
    if (!inFlight) return;
    if (inFlight.clientIDs.has(b.clientID)) {
      inFlight = undefined; // our own update: the batch is committed
    } else if (b.version > inFlight.base && !inFlight.overlapped) {
      inFlight.overlapped = true;
      overlaps++;
    }
  });
  return { count: () => overlaps };
}
