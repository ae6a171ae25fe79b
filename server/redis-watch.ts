/**
 * Redis visibility for operators: one warn line "waiting for Redis at host:port" when Redis has not
 * answered FIRST_WAIT_LOG_MS after start (a healthy start connects well before: no warning) and every
 * WAIT_LOG_INTERVAL_MS after that until every Redis connection is ready, one warn line when Redis is lost, one
 * info line when it is back. Polls a readiness function (cheap: connection statuses) every
 * POLL_INTERVAL_MS; the timer never keeps the process alive.
 */
import type { Logger } from "./logger.js";

/** How often the waiting line repeats while Redis has never answered, milliseconds. */
export const WAIT_LOG_INTERVAL_MS = 5000;
/** How long after start Redis may take before the first waiting line, milliseconds. */
export const FIRST_WAIT_LOG_MS = 1000;
/** How often readiness is checked, milliseconds. */
const POLL_INTERVAL_MS = 250;

/** `host:port` of a redis:// URL (no credentials, no database), for log lines. */
export function redisTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || "6379"}`;
  } catch {
    return "(unparsable REDIS_URL)";
  }
}

export interface RedisWatch {
  stop(): void;
}

/**
 * Starts watching `isReady` (true when every Redis connection of the process is up).
 * @param target `host:port`, named in every line
 * @param lastError the last connection error (ECONNREFUSED, NOAUTH, a cluster setting refused, a
 *   database Redis does not have), named in the waiting lines as `lastError`
 */
export function watchRedis(isReady: () => boolean, target: string, logger: Pick<Logger, "warn" | "info">, lastError: () => string | undefined = () => undefined): RedisWatch {
  let everReady = false;
  let up = false;
  let lastWaitLog = Date.now() - WAIT_LOG_INTERVAL_MS + FIRST_WAIT_LOG_MS;
  const started = Date.now();
  const check = (): void => {
    const now = Date.now();
    const ready = isReady();
    if (!everReady) {
      if (ready) {
        everReady = up = true;
        logger.info({ redis: target, waitedMs: now - started }, `connected to Redis at ${target}`);
      } else if (now - lastWaitLog >= WAIT_LOG_INTERVAL_MS) {
        lastWaitLog = now;
        logger.warn({ redis: target, waitedMs: now - started, lastError: lastError() }, `waiting for Redis at ${target}`);
      }
      return;
    }
    if (up && !ready) logger.warn({ redis: target }, `Redis connection lost (${target}); new handshakes and edits are refused with store_unavailable until it is back`);
    else if (!up && ready) logger.info({ redis: target }, `Redis connection back (${target})`);
    up = ready;
  };
  check();
  const timer = setInterval(check, POLL_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
