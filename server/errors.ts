/**
 * Stable error codes, shared by event acknowledgements (`{ ok: false, error: { code, message } }`),
 * `operation_error` emits and handshake rejections (`connect_error` with `data.code`).
 *
 * Codes are part of the wire contract (docs/protocol.md): never rename one, only add.
 * `test/errors.test.ts` checks that every code is unique and has exactly one class.
 */
export const ErrorCodes = {
  /** Handshake: `auth.token` missing, empty or not a string. */
  MISSING_TOKEN: "missing_token",
  /** Handshake: the site API answered 401/403/404, a `tmp-` token is malformed, or a share token does not verify. */
  INVALID_TOKEN: "invalid_token",
  /** Handshake: the site API timed out, failed, answered 5xx or a malformed body, or API_BASE_URL is unset. */
  AUTH_UNAVAILABLE: "auth_unavailable",
  /** A payload failed the schema or a semantic check (range, order, overlap, surrogate split, ...). */
  INVALID_PAYLOAD: "invalid_payload",
  /** The socket's mode (`view_only`) does not allow the operation. */
  FORBIDDEN: "forbidden",
  /** `version` is ahead of the server, `epoch` differs, the codespace is gone, or a resend does not match. */
  INVALID_VERSION: "invalid_version",
  /** `version` is older than the stored history reaches; the client must reload. */
  VERSION_TOO_OLD: "version_too_old",
  /** Accepting the batch would make the document longer than MAX_DOC_LENGTH UTF-16 code units. */
  DOC_TOO_LARGE: "doc_too_large",
  /** The code store (Redis) is unreachable or failed; nothing was applied. */
  STORE_UNAVAILABLE: "store_unavailable",
  /** The server is shutting down and takes no new work. */
  SHUTTING_DOWN: "shutting_down",
  /** An unexpected server fault; nothing was applied. */
  INTERNAL_ERROR: "internal_error",
  /** This socket sent `insert_value`/`create_selection` faster than RATE_LIMIT_EVENTS per RATE_LIMIT_WINDOW_MS; nothing was applied. */
  RATE_LIMITED: "rate_limited",
  /** Handshake: the codespace already has MAX_CONNECTIONS_PER_CODESPACE sockets on this server process. */
  TOO_MANY_CONNECTIONS: "too_many_connections",
  /**
   * A message is larger than MAX_MESSAGE_BYTES. Raised by the reference client before it sends (the
   * server cannot answer such a message: Socket.IO closes the connection at `maxHttpBufferSize`).
   */
  MESSAGE_TOO_LARGE: "message_too_large",
  /** Handshake: a local share token (SHARE_TOKEN_SECRET) that is authentic but past its expiry. */
  TOKEN_EXPIRED: "token_expired",
  /**
   * Handshake: the codespace is not in the store and the site could not be asked for it (the load
   * hook failed or timed out); nothing was created. Retry later.
   */
  CODESPACE_UNAVAILABLE: "codespace_unavailable",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Wire shape of an error in acks, `operation_error` and `connect_error.data`. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

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
  constructor(limit: number) {
    super(ErrorCodes.DOC_TOO_LARGE, `the document would exceed ${limit} UTF-16 code units`);
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
