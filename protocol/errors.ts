/**
 * Stable error codes of the wire contract, shared by event acknowledgements
 * (`{ ok: false, error: { code, message } }`), `operation_error` emits and handshake rejections
 * (`connect_error` with `data.code`).
 *
 * Codes are part of the wire contract (docs/protocol.md): never rename one, only add.
 * `test/errors.test.ts` checks that every code is unique and that the server has exactly one class per code.
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
  /** `doc_too_large` only: MAX_DOC_LENGTH, UTF-16 code units. */
  limit?: number;
}

/** Every code, in declaration order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCodes);

/** True when `value` is one of the protocol's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}
