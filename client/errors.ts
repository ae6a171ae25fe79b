/**
 * Errors the client reports: rejected `connect()` promises, `error` events, thrown by `applyLocal`.
 */
import type { ErrorCode } from "../protocol/errors.js";

/**
 * Codes a client error can carry: every server code (docs/protocol.md) plus client-side ones:
 * `connect_failed` (the transport could not reach the server), `closed` (the client was closed),
 * `expired` (the codespace expired), `disconnected` (needs a live connection), `desync` (the server
 * sent something that does not apply to the client's copy; the client reloads).
 */
export type ClientErrorCode = ErrorCode | "connect_failed" | "closed" | "expired" | "disconnected" | "desync";

export class CodespaceClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "CodespaceClientError";
  }
}

/** Server codes worth retrying after a backoff: the request changed nothing and may succeed later. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(["store_unavailable", "shutting_down", "internal_error", "rate_limited"]);
