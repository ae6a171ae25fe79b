/**
 * Constants a client must know: where to connect, which tokens need no site API, and the server's
 * default limits (a server may be configured differently; these are its defaults, server/config.ts).
 */

/** Namespace all codespace sockets live in (`io(origin + NAMESPACE, { auth: { token } })`). */
export const NAMESPACE = "/codespace";

/**
 * Prefix of temporary codespace tokens: `tmp-` followed by 1 to 64 of `A-Z a-z 0-9 _ -`. The token
 * names the codespace; no site API is asked (mode `edit`).
 */
export const TMP_TOKEN_PREFIX = "tmp-";

/** The shape of a temporary codespace token (`tmp-` then 1 to 64 of `A-Z a-z 0-9 _ -`). */
export const TMP_TOKEN_PATTERN = /^tmp-[A-Za-z0-9_-]{1,64}$/;

/**
 * The server's default limits, as a client sees them (docs/operations.md, "Limits"). Units: UTF-16
 * code units for lengths, bytes for messages, counts otherwise. Beyond a limit the server answers
 * `invalid_payload` (`doc_too_large` for the document; a message above `maxMessageBytes` closes the
 * connection, which the reference client prevents with `message_too_large`).
 */
export const DEFAULT_LIMITS = Object.freeze({
  /** Largest document, UTF-16 code units (MAX_DOC_LENGTH). */
  maxDocLength: 1_000_000,
  /** Most updates in one `insert_value` (MAX_UPDATES_PER_BATCH). */
  maxUpdatesPerBatch: 1000,
  /** Most changes in one update (MAX_CHANGES_PER_UPDATE). */
  maxChangesPerUpdate: 1000,
  /** Most changes in one `insert_value`, all updates together (MAX_CHANGES_PER_BATCH). */
  maxChangesPerBatch: 2000,
  /** Most ranges in one `create_selection` (MAX_SELECTIONS). */
  maxSelections: 100,
  /** Largest Socket.IO message, bytes (MAX_MESSAGE_BYTES, Socket.IO `maxHttpBufferSize`). */
  maxMessageBytes: 4 * 1024 * 1024,
});
