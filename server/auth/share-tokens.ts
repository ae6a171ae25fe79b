/**
 * Built-in authenticate hook for the site's own share tokens (SHARE_TOKEN_SECRET), verified locally
 * with node:crypto, no API round trip (docs/integration.md, "Share tokens").
 *
 * Format (from the site's code): URL-safe base64 (padding optional) of
 * `nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)`, no associated data; the key is the
 * SHA-256 digest of the site's `SECRET_KEY` (UTF-8); the plaintext is
 * `"<codespace uuid>:<expiry, unix seconds>:<mode>"`, mode `edit` or `view_only`.
 *
 * A token is "in this format" when it is only URL-safe base64 characters and decodes to at least
 * 12 + 16 + 8 bytes (48 characters or more). Such tokens are decided here: authentic and unexpired:
 * admitted; authentic and expired: `token_expired`; anything else (tampered, another key,
 * undecodable plaintext): `invalid_token`. Shorter tokens, or ones with other characters, pass on to
 * the next hook (the site API check).
 */
import { createDecipheriv, createHash } from "node:crypto";
import { TMP_TOKEN_PREFIX } from "../../protocol/constants.js";
import { InvalidTokenError, TokenExpiredError } from "../errors.js";
import type { AuthenticateHook } from "../hooks.js";
import type { AuthCounter } from "./authenticate.js";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Shortest plaintext considered ("x:1:edit"), bytes. */
const MIN_PLAINTEXT_BYTES = 8;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;
const PLAINTEXT = /^([^:]{1,128}):(\d{1,12}):(edit|view_only)$/;

export interface ShareTokenOptions {
  /** The site's SECRET_KEY (UTF-8); the AES key is its SHA-256 digest. */
  secret: string;
  /** Clock, milliseconds. Default Date.now. */
  now?: () => number;
}

/** Decrypts a token in the format, or returns undefined (not authentic, or not in the format). */
function open(key: Buffer, token: string): string | undefined {
  const raw = Buffer.from(token, "base64url");
  if (raw.length < NONCE_BYTES + TAG_BYTES + MIN_PLAINTEXT_BYTES) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch {
    return undefined;
  }
}

/** True when `token` has the shape of a share token (decided by this hook, never passed on). */
export function isShareTokenShaped(token: string): boolean {
  return BASE64URL.test(token) && Math.floor((token.replace(/=+$/, "").length * 3) / 4) >= NONCE_BYTES + TAG_BYTES + MIN_PLAINTEXT_BYTES;
}

export function shareTokens(options: ShareTokenOptions, count: AuthCounter = () => {}): AuthenticateHook {
  const key = createHash("sha256").update(options.secret, "utf8").digest();
  const now = options.now ?? Date.now;
  return ({ token }) => {
    if (!isShareTokenShaped(token)) return undefined;
    const plain = open(key, token);
    const m = plain === undefined ? null : PLAINTEXT.exec(plain);
    if (!m) {
      count("invalid_token");
      throw new InvalidTokenError();
    }
    const [, codespace, expiry, mode] = m;
    if (codespace!.startsWith(TMP_TOKEN_PREFIX)) {
      count("invalid_token");
      throw new InvalidTokenError();
    }
    if (Number(expiry) * 1000 <= now()) {
      count("token_expired");
      throw new TokenExpiredError();
    }
    count("share_token");
    return { codespace: codespace!, mode: mode as "edit" | "view_only" };
  };
}
