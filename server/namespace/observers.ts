/**
 * The observers of the event pipelines (pipeline.ts): logs and metrics of every outcome. They see
 * each answer before it is sent and never change it.
 */
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { Observer } from "./pipeline.js";

/**
 * Refusals: `internal_error` as an error line with the cause; `rate_limited` at debug (one warn
 * line when it turns into a disconnect, from the guard); any other code at info "request refused".
 */
export function logRefusals(logger: Logger): Observer {
  return ({ event, ctx: { socket }, error, cause }) => {
    if (!error) return;
    const ids = { event, socket: socket.id, codespace: socket.data.codespace };
    if (error.code === "internal_error") logger.error({ err: cause, ...ids }, "handler failed");
    else logger[error.code === "rate_limited" ? "debug" : "info"]({ ...ids, code: error.code }, "request refused");
  };
}

/** `codespace_redis_errors_total{kind="command"}` for every `store_unavailable` answer. */
export function countStoreErrors(metrics?: Metrics): Observer {
  return ({ error }) => {
    if (error?.code === "store_unavailable") metrics?.redisErrors.inc({ kind: "command" });
  };
}

/** `insert_value`: accept latency of accepted batches, refusals by code. */
export function countBatches(metrics?: Metrics): Observer {
  return ({ error, elapsedMs }) => {
    if (!metrics) return;
    if (error) metrics.updatesRejected.inc({ code: error.code });
    else metrics.acceptLatency.observe(elapsedMs / 1000);
  };
}
