/**
 * The `/codespace` namespace: joins each authenticated socket to its codespace's room, sends the
 * `connected` snapshot, and runs each client event through its declared pipeline (events.ts,
 * pipeline.ts). Transport concerns only: acks, `operation_error`, rooms, broadcasts, expiry
 * disconnects; the document core is codespace.ts.
 *
 * Layout: types.ts (socket types, rooms), pipeline.ts (the stage runner), guards.ts, observers.ts,
 * events.ts (the pipelines of insert_value, create_selection, pull), broadcast.ts (commit and
 * expiry broadcasts, delivery count), unknown-event.ts.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Codespace } from "../codespace.js";
import type { CodespaceRegistry } from "../codespace-registry.js";
import { toCodespaceError } from "../errors.js";
import type { Snapshot } from "../store/code-store.js";
import { admit } from "../connection-cap.js";
import { Presence } from "../presence.js";
import type { ConnectedPayload, ServerLimits } from "../protocol/events.js";
import { wantsBatches } from "../batch-option.js";
import { countDeliveries, joining } from "./broadcast.js";
import { clientEvents, type EventDeps } from "./events.js";
import { eventAttacher, type EventContext } from "./pipeline.js";
import { batchRoomOf, roomOf, type CodespaceNamespace, type CodespaceSocket } from "./types.js";
import { answerUnknownEvents } from "./unknown-event.js";

export { broadcaster, expireLocally, resyncLocally } from "./broadcast.js";
export { batchRoomOf, roomOf, type CodespaceNamespace, type CodespaceSocket } from "./types.js";

export interface NamespaceDeps extends EventDeps {
  registry: CodespaceRegistry;
  /**
   * Told of every socket that joins its codespace's room and of its leaving (with Redis: the
   * presence heartbeat, presence-heartbeat.ts). Called from the namespace's own connection and
   * disconnect handlers, so that it adds no listener to each socket.
   */
  membership?: { joined(socketId: string, room: string): void; left(socketId: string): void };
  /** True with the Redis adapter: other processes may hold sockets of the same rooms (presence lists ask them). */
  crossProcess?: boolean;
}

/** Attempts at opening a codespace for a new socket before it is told `store_unavailable`. */
const OPEN_ATTEMPTS = 3;

/**
 * Opens the socket's codespace, retrying `store_unavailable` (OPEN_ATTEMPTS in all, 50 ms apart,
 * then 100 ms): on a busy machine a burst of handshakes delays the event loop past the store's
 * per-command timeout although Redis answered, and failing the open costs the socket its session.
 * A store that is really down fails at once each time, so this adds at most 150 ms.
 * @throws CodespaceError from the last attempt
 */
async function openCodespace(codespace: Codespace): Promise<Snapshot> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await codespace.open();
    } catch (err) {
      if (attempt >= OPEN_ATTEMPTS || toCodespaceError(err).code !== "store_unavailable") throw err;
      await delay(50 * attempt);
    }
  }
}

/** Wires the connection handler and the client events of the namespace. */
export function attachNamespace(nsp: CodespaceNamespace, deps: NamespaceDeps): void {
  const { registry, config, logger, metrics } = deps;
  const presence = new Presence(nsp, logger, deps.crossProcess ?? false);
  // announced in every `connected` payload (one frozen object, not one per socket)
  const limits: ServerLimits = Object.freeze({
    maxChangesPerUpdate: config.maxChangesPerUpdate,
    maxChangesPerBatch: config.maxChangesPerBatch,
    maxUpdatesPerBatch: config.maxUpdatesPerBatch,
    maxMessageBytes: config.maxMessageBytes,
  });
  const events = clientEvents(deps);
  // One pair of room strings per codespace, not one per socket (the adapter keeps each socket's rooms).
  const rooms = new WeakMap<Codespace, { room: string; batches: string }>();
  const roomsOf = (codespace: Codespace): { room: string; batches: string } => {
    let r = rooms.get(codespace);
    if (r === undefined) rooms.set(codespace, (r = { room: roomOf(codespace.id), batches: batchRoomOf(codespace.id) }));
    return r;
  };
  // An event's context is looked up when it arrives: the socket holds its codespace's reference
  // from `acquire` below until its `disconnect`, and Socket.IO dispatches no event after that.
  const attach = eventAttacher((socket): EventContext => {
    const codespace = registry.held(socket.data.codespace)!;
    return { socket, codespace, room: roomsOf(codespace).room };
  });

  function onDisconnect(this: CodespaceSocket, reason: string): void {
    const id = this.data.codespace;
    deps.rateLimiter?.forget(this.id);
    registry.release(id);
    presence.left(this.id, roomOf(id));
    deps.membership?.left(this.id);
    logger.info({ socket: this.id, codespace: id, reason }, "socket disconnected");
  }

  nsp.on("connection", async (socket: CodespaceSocket) => {
    const { codespace: id, mode } = socket.data;
    const ids = { socket: socket.id, codespace: id }; // no logger.child per socket: it costs heap per connection
    if (!admit(nsp, socket, { limit: config.maxConnectionsPerCodespace, logger, metrics })) return;
    if (metrics) countDeliveries(socket, metrics);
    const codespace = registry.acquire(id);
    const { room, batches } = roomsOf(codespace);
    socket.join(wantsBatches(socket) ? [room, batches] : room);
    presence.joined(socket, room);
    deps.membership?.joined(socket.id, room);
    logger.info({ ...ids, mode, transport: socket.conn.transport.name }, "socket connected");
    socket.on("disconnect", onDisconnect); // one shared listener: no closure per connection

    attach(socket, events.insert_value);
    attach(socket, events.create_selection);
    answerUnknownEvents(socket);
    attach(socket, events.pull);

    joining.add(socket.id);
    try {
      const [snap, users] = await Promise.all([openCodespace(codespace), presence.list(room)]);
      if (!socket.connected) return;
      const ttl = registry.ttlSeconds(id);
      const payload: ConnectedPayload = { id: socket.id, codespace: id, mode, epoch: snap.epoch, version: snap.version, code: snap.code, users, ttl, limits };
      socket.emit("connected", payload);
    } catch (err) {
      const e = toCodespaceError(err);
      logger.warn({ ...ids, code: e.code }, "could not open codespace");
      socket.emit("operation_error", { event: "connected", error: e.toWire() });
      socket.disconnect(false);
    } finally {
      joining.delete(socket.id);
    }
  });
}
