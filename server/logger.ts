/**
 * Structured logs (pino): one JSON line per event. Tokens never reach the log: the handshake's
 * `auth` is never logged, and the redaction below is a second guard.
 */
import { pino, type Logger } from "pino";

export type { Logger };

/** Creates the process logger at `level` (LOG_LEVEL). */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: ["token", "*.token", "auth", "*.auth", "headers.authorization", "*.headers.authorization"], censor: "[redacted]" },
  });
}
