/**
 * The `/codespace` namespace: joins each authenticated socket to its codespace's room, sends the
 * `connected` snapshot, and maps client events onto the document core (codespace.ts). Transport
 * concerns only: acks, `operation_error`, rooms, broadcasts, expiry disconnects.
 */
import type { Namespace, Server, Socket } from "socket.io";
import type { SocketAuth } from "./auth.js";
import type { CodespaceRegistry } from "./codespace-registry.js";
import type { Config } from "./config.js";
import { ForbiddenError, InvalidPayloadError, RateLimitedError, ShuttingDownError, toCodespaceError } from "./errors.js";
import { admit } from "./connection-cap.js";
import { countDeliveries, type Metrics } from "./metrics.js";
import { RATE_LIMITED_EVENTS, type SocketRateLimiter } from "./rate-limit.js";
import type { Logger } from "./logger.js";
import type { ClientToServerEvents, ConnectedPayload, InsertValueBroadcast, ServerToClientEvents } from "./protocol/events.js";
import { checkCreateSelection, checkInsertValue, checkPull, type PayloadLimits } from "./protocol/validate.js";
import { Presence } from "./presence.js";

export type CodespaceSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketAuth>;
export type CodespaceNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketAuth>;

/** The events a client may send (docs/protocol.md). */
const CLIENT_EVENTS: ReadonlySet<string> = new Set<keyof ClientToServerEvents>(["insert_value", "create_selection", "pull"]);

/** Room of a codespace inside the namespace. */
export function roomOf(codespace: string): string {
  return `codespace:${codespace}`;
}

export interface NamespaceDeps {
  config: Config;
  registry: CodespaceRegistry;
  logger: Logger;
  /** True once shutdown began: new work is refused with `shutting_down`. */
  isShuttingDown(): boolean;
  /** Prometheus instruments (metrics.ts); absent: nothing is counted. */
  metrics?: Metrics;
  /** Per-socket rate limit of `insert_value` and `create_selection` (rate-limit.ts); absent: no limit. */
  rateLimiter?: SocketRateLimiter;
}

/** Takes a rate-limit point for a write event: throws `rate_limited`; on abuse also disconnects the socket. */
async function rateLimit(socket: CodespaceSocket, event: string, deps: NamespaceDeps): Promise<void> {
  if (!deps.rateLimiter || !RATE_LIMITED_EVENTS.has(event)) return;
  const verdict = await deps.rateLimiter.consume(socket.id);
  if (verdict === "ok") return;
  deps.metrics?.rateLimited.inc({ event });
  if (verdict === "abuse" && socket.connected) {
    deps.logger.warn({ event, socket: socket.id, codespace: socket.data.codespace }, "rate limit exceeded repeatedly; disconnecting");
    deps.metrics?.forcedDisconnects.inc({ reason: "rate_limit" });
    // after the refusal below is acknowledged; disconnect(false) lets both reach a polling client too
    setImmediate(() => socket.disconnect(false));
  }
  throw new RateLimitedError();
}

type Handler = (payload: unknown, socket: CodespaceSocket) => Promise<object> | object;

/** Wraps a handler: ack `{ ok: true, ... }` / `{ ok: false, error }`, or `operation_error` without a callback. */
function on(socket: CodespaceSocket, event: keyof ClientToServerEvents, handler: Handler, deps: NamespaceDeps): void {
  socket.on(event, async (...args: unknown[]) => {
    const ack = typeof args[args.length - 1] === "function" ? (args.pop() as (res: object) => void) : undefined;
    const started = performance.now();
    try {
      if (deps.isShuttingDown()) throw new ShuttingDownError();
      await rateLimit(socket, event, deps);
      const result = await handler(args[0], socket);
      if (event === "insert_value") deps.metrics?.acceptLatency.observe((performance.now() - started) / 1000);
      ack?.({ ok: true, ...result });
    } catch (err) {
      const e = toCodespaceError(err);
      if (event === "insert_value") deps.metrics?.updatesRejected.inc({ code: e.code });
      if (e.code === "store_unavailable") deps.metrics?.redisErrors.inc({ kind: "command" });
      if (e.code === "internal_error") deps.logger.error({ err, event, socket: socket.id, codespace: socket.data.codespace }, "handler failed");
      // rate_limited: one warn line when it turns into a disconnect, not one per refused event
      else deps.logger[e.code === "rate_limited" ? "debug" : "info"]({ event, code: e.code, socket: socket.id, codespace: socket.data.codespace }, "request refused");
      if (ack) ack({ ok: false, error: e.toWire() });
      else socket.emit("operation_error", { event, error: e.toWire() });
    }
  });
}

function requireEdit(socket: CodespaceSocket): void {
  if (socket.data.mode !== "edit") throw new ForbiddenError();
}

/**
 * Sends committed updates to this instance's sockets of the codespace. Local only: every instance
 * receives every commit from the store's commit feed, in commit order, and sends it to its own.
 */
export function broadcaster(nsp: CodespaceNamespace) {
  return (codespace: string, updates: InsertValueBroadcast[]): void => {
    const room = nsp.local.to(roomOf(codespace));
    for (const u of updates) room.emit("insert_value", u);
  };
}

/** Sends `expired` to this instance's sockets of the codespace, then disconnects them. */
export function expireLocally(nsp: CodespaceNamespace, codespace: string): void {
  const local = nsp.local.in(roomOf(codespace));
  local.emit("expired", { codespace });
  // disconnect(false) keeps the transport open long enough to flush `expired` on long-polling too
  local.disconnectSockets(false);
}

/** Wires the connection handler and the client events of the namespace. */
export function attachNamespace(nsp: CodespaceNamespace, deps: NamespaceDeps): void {
  const { registry, config, logger } = deps;
  const limits: PayloadLimits = config;
  const presence = new Presence(nsp, logger);

  nsp.on("connection", async (socket: CodespaceSocket) => {
    const { codespace: id, mode } = socket.data;
    const ids = { socket: socket.id, codespace: id }; // no logger.child per socket: it costs heap per connection
    if (!admit(nsp, socket, { limit: config.maxConnectionsPerCodespace, logger, metrics: deps.metrics })) return;
    const stopCounting = deps.metrics ? countDeliveries(socket.conn, deps.metrics) : undefined;
    socket.on("disconnect", () => {
      stopCounting?.();
      deps.rateLimiter?.forget(socket.id);
    });
    socket.join(roomOf(id));
    presence.joined(socket, roomOf(id));
    const codespace = registry.acquire(id);
    logger.info({ ...ids, mode, transport: socket.conn.transport.name }, "socket connected");
    socket.on("disconnect", (reason) => {
      registry.release(id);
      presence.left(socket.id, roomOf(id));
      logger.info({ ...ids, reason }, "socket disconnected");
    });

    on(socket, "insert_value", async (p, s) => {
      requireEdit(s);
      const version = await codespace.submit(checkInsertValue(p, limits), s.id);
      return { version };
    }, deps);
    on(socket, "create_selection", (p, s) => {
      requireEdit(s);
      const { selections } = checkCreateSelection(p, limits);
      s.to(roomOf(id)).emit("create_selection", { sender: s.id, selections });
      return {};
    }, deps);
    // Any other event: answered with invalid_payload (an ack must never hang).
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event === "string" && CLIENT_EVENTS.has(event)) return;
      const name = String(event).slice(0, 64);
      const error = new InvalidPayloadError(`unknown event "${name}"`).toWire();
      const ack = args[args.length - 1];
      if (typeof ack === "function") (ack as (res: object) => void)({ ok: false, error });
      else socket.emit("operation_error", { event: name, error });
    });
    on(socket, "pull", async (p) => {
      const { epoch, version } = checkPull(p);
      return await codespace.pull(epoch, version);
    }, deps);

    try {
      const [snap, users] = await Promise.all([codespace.open(), presence.list(roomOf(id))]);
      if (!socket.connected) return;
      const payload: ConnectedPayload = { id: socket.id, codespace: id, mode, epoch: snap.epoch, version: snap.version, code: snap.code, users };
      socket.emit("connected", payload);
    } catch (err) {
      const e = toCodespaceError(err);
      logger.warn({ ...ids, code: e.code }, "could not open codespace");
      socket.emit("operation_error", { event: "connected", error: e.toWire() });
      socket.disconnect(false);
    }
  });
}

export type { Server };
