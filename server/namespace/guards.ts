/**
 * The guards of the event pipelines (pipeline.ts), in the order events declare them: shutdown,
 * rate limit, edit mode. Each throws the CodespaceError that refuses the event.
 */
import { ForbiddenError, RateLimitedError, ShuttingDownError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { SocketRateLimiter } from "../rate-limit.js";
import type { Guard } from "./pipeline.js";

/** `shutting_down` once the server's graceful shutdown began. */
export function notShuttingDown(isShuttingDown: () => boolean): Guard {
  return () => {
    if (isShuttingDown()) throw new ShuttingDownError();
  };
}

/**
 * Takes one rate-limit point (rate-limit.ts): `rate_limited` beyond the limit; on abuse
 * (RATE_LIMIT_DISCONNECT_AFTER refusals) also one warn line and the socket is disconnected after
 * the refusal is answered. Absent limiter: no limit.
 */
export function rateLimit(limiter: SocketRateLimiter | undefined, logger: Logger, metrics?: Metrics): Guard {
  // sockets already being disconnected for abuse: events still queued behind the one that tipped it
  // are refused without a second warn line or a second disconnect
  const disconnecting = new WeakSet<object>();
  return async ({ socket }, event) => {
    if (!limiter) return;
    const verdict = await limiter.consume(socket.id);
    if (verdict === "ok") return;
    metrics?.rateLimited.inc({ event });
    if (verdict === "abuse" && socket.connected && !disconnecting.has(socket)) {
      disconnecting.add(socket);
      logger.warn({ event, socket: socket.id, codespace: socket.data.codespace }, "rate limit exceeded repeatedly; disconnecting");
      metrics?.forcedDisconnects.inc({ reason: "rate_limit" });
      // after the refusal below is acknowledged; disconnect(false) lets both reach a polling client too
      setImmediate(() => socket.disconnect(false));
    }
    throw new RateLimitedError();
  };
}

/** `forbidden` for view-only sockets. */
export const editMode: Guard = ({ socket }) => {
  if (socket.data.mode !== "edit") throw new ForbiddenError();
};
