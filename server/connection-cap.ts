/**
 * Cap on the sockets of one codespace, MAX_CONNECTIONS_PER_CODESPACE, counted PER SERVER PROCESS
 * (the local sockets in the codespace's room): with N processes behind a balancer a codespace can
 * hold up to N times the cap. A cluster-wide count would need a Redis round trip on every handshake
 * and a counter that survives crashed processes; the per-process cap already bounds what one process
 * spends on one codespace (broadcast fan-out, memory).
 *
 * Two checks: the namespace middleware refuses the handshake with `too_many_connections`
 * (`connect_error`), and `admit()` in the connection handler closes the race of handshakes finishing
 * in the same tick (that socket gets `operation_error` `{ event: "connected" }` and is disconnected).
 */
import type { Socket } from "socket.io";
import { TooManyConnectionsError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { roomOf, type CodespaceNamespace, type CodespaceSocket } from "./namespace/types.js";

/** Sockets of `codespace` in this process. */
export function localConnections(nsp: CodespaceNamespace, codespace: string): number {
  return nsp.adapter.rooms.get(roomOf(codespace))?.size ?? 0;
}

export interface ConnectionCapOptions {
  limit: number;
  logger?: Logger;
  metrics?: Metrics;
}

/** Namespace middleware (after auth, which sets `socket.data.codespace`). */
export function connectionCapMiddleware(nsp: CodespaceNamespace, opts: ConnectionCapOptions) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const codespace = (socket.data as { codespace?: string }).codespace;
    if (codespace === undefined || localConnections(nsp, codespace) < opts.limit) return next();
    const e = new TooManyConnectionsError(opts.limit);
    opts.metrics?.forcedDisconnects.inc({ reason: "too_many_connections" });
    opts.logger?.info({ socket: socket.id, codespace, code: e.code }, "handshake refused");
    const out = new Error(e.message) as Error & { data: unknown };
    out.data = e.toWire();
    next(out);
  };
}

/**
 * Call in the connection handler BEFORE joining the room: false (and the socket is told and
 * disconnected) when the codespace is already full here.
 */
export function admit(nsp: CodespaceNamespace, socket: CodespaceSocket, opts: ConnectionCapOptions): boolean {
  const codespace = socket.data.codespace;
  if (localConnections(nsp, codespace) < opts.limit) return true;
  const e = new TooManyConnectionsError(opts.limit);
  opts.metrics?.forcedDisconnects.inc({ reason: "too_many_connections" });
  opts.logger?.info({ socket: socket.id, codespace, code: e.code }, "connection refused");
  socket.emit("operation_error", { event: "connected", error: e.toWire() });
  socket.disconnect(false);
  return false;
}
