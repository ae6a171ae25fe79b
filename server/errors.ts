/**
 * The server's error classes: one class per wire error code (ioredis style). The codes and the wire
 * shape `{ code, message }` are the protocol's (protocol/errors.ts), shared with clients.
 */
import { ErrorCodes, type ErrorCode, type WireError } from "../protocol/errors.js";

export { ErrorCodes, type ErrorCode, type WireError };

/** Base class: every error the server reports to a client carries a stable `code`. */
export class CodespaceError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
  toWire(): WireError {
    return { code: this.code, message: this.message };
  }
}

export class MissingTokenError extends CodespaceError {
  constructor(message = "auth.token must be a non-empty string") {
    super(ErrorCodes.MISSING_TOKEN, message);
  }
}
export class InvalidTokenError extends CodespaceError {
  constructor(message = "the token was refused") {
    super(ErrorCodes.INVALID_TOKEN, message);
  }
}
export class AuthUnavailableError extends CodespaceError {
  constructor(message = "the token could not be checked now; try again later") {
    super(ErrorCodes.AUTH_UNAVAILABLE, message);
  }
}
export class InvalidPayloadError extends CodespaceError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_PAYLOAD, message);
  }
}
export class ForbiddenError extends CodespaceError {
  constructor(message = "this codespace is view_only for this connection") {
    super(ErrorCodes.FORBIDDEN, message);
  }
}
export class InvalidVersionError extends CodespaceError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_VERSION, message);
  }
}
export class VersionTooOldError extends CodespaceError {
  constructor(message = "history no longer reaches back to this version; reload the codespace") {
    super(ErrorCodes.VERSION_TOO_OLD, message);
  }
}
export class DocTooLargeError extends CodespaceError {
  constructor(readonly limit: number) {
    super(ErrorCodes.DOC_TOO_LARGE, `the document would exceed ${limit} UTF-16 code units (MAX_DOC_LENGTH); nothing was applied`);
  }
  override toWire(): WireError {
    return { code: this.code, message: this.message, limit: this.limit };
  }
}
export class StoreUnavailableError extends CodespaceError {
  constructor(message = "the code store is unavailable; nothing was applied") {
    super(ErrorCodes.STORE_UNAVAILABLE, message);
  }
}
export class ShuttingDownError extends CodespaceError {
  constructor(message = "the server is shutting down; reconnect") {
    super(ErrorCodes.SHUTTING_DOWN, message);
  }
}
export class InternalError extends CodespaceError {
  constructor(message = "internal error; nothing was applied") {
    super(ErrorCodes.INTERNAL_ERROR, message);
  }
}

export class RateLimitedError extends CodespaceError {
  constructor(message = "too many requests on this connection; slow down and resend") {
    super(ErrorCodes.RATE_LIMITED, message);
  }
}
export class TooManyConnectionsError extends CodespaceError {
  constructor(limit: number) {
    super(ErrorCodes.TOO_MANY_CONNECTIONS, `this codespace already has ${limit} connections on this server; try again later`);
  }
}
export class MessageTooLargeError extends CodespaceError {
  constructor(bytes: number, limit: number) {
    super(ErrorCodes.MESSAGE_TOO_LARGE, `the message is ${bytes} bytes, more than the ${limit} bytes allowed`);
  }
}

export class TokenExpiredError extends CodespaceError {
  constructor(message = "the share token has expired") {
    super(ErrorCodes.TOKEN_EXPIRED, message);
  }
}
export class CodespaceUnavailableError extends CodespaceError {
  constructor(message = "the codespace could not be loaded from the site now; try again later") {
    super(ErrorCodes.CODESPACE_UNAVAILABLE, message);
  }
}

/** One class per code (ioredis style); `toCodespaceError` maps anything else to `internal_error`. */
export const ErrorClasses = {
  [ErrorCodes.MISSING_TOKEN]: MissingTokenError,
  [ErrorCodes.INVALID_TOKEN]: InvalidTokenError,
  [ErrorCodes.AUTH_UNAVAILABLE]: AuthUnavailableError,
  [ErrorCodes.INVALID_PAYLOAD]: InvalidPayloadError,
  [ErrorCodes.FORBIDDEN]: ForbiddenError,
  [ErrorCodes.INVALID_VERSION]: InvalidVersionError,
  [ErrorCodes.VERSION_TOO_OLD]: VersionTooOldError,
  [ErrorCodes.DOC_TOO_LARGE]: DocTooLargeError,
  [ErrorCodes.STORE_UNAVAILABLE]: StoreUnavailableError,
  [ErrorCodes.SHUTTING_DOWN]: ShuttingDownError,
  [ErrorCodes.INTERNAL_ERROR]: InternalError,
  [ErrorCodes.RATE_LIMITED]: RateLimitedError,
  [ErrorCodes.TOO_MANY_CONNECTIONS]: TooManyConnectionsError,
  [ErrorCodes.MESSAGE_TOO_LARGE]: MessageTooLargeError,
  [ErrorCodes.TOKEN_EXPIRED]: TokenExpiredError,
  [ErrorCodes.CODESPACE_UNAVAILABLE]: CodespaceUnavailableError,
} as const;

/** Normalizes any thrown value into a CodespaceError (unknown faults become `internal_error`). */
export function toCodespaceError(err: unknown): CodespaceError {
  return err instanceof CodespaceError ? err : new InternalError();
}
