/**
 * The built-in durable sink (SAVE_URL, SAVE_SECRET): save and load hooks over HTTP
 * (docs/integration.md, "Saves and loads").
 *
 * - save: `PUT ${SAVE_URL}<codespace>` with JSON `{ codespace, epoch, version, code }`, headers
 *   `X-Codespace-Signature: sha256=<hex HMAC-SHA256 of the exact body with SAVE_SECRET>` and
 *   `Idempotency-Key: <codespace>:<epoch>:<version>`. 2xx: `saved`; 409: `conflict` (the site holds
 *   something newer); anything else, a timeout or a network error: throws (the saver retries).
 * - load: `GET ${SAVE_URL}<codespace>` with `X-Codespace-Signature: sha256=<hex HMAC of the
 *   codespace id>`. 200 with `{ code: string }`: that code; 404: null (a new, empty codespace);
 *   anything else, a body without a string `code` or longer than MAX_DOC_LENGTH: throws.
 * Both are bounded by the caller's signal (SAVE_TIMEOUT_MS).
 */
import { createHmac } from "node:crypto";
import axios from "axios";
import type { Hooks } from "../hooks.js";

export interface HttpSinkOptions {
  /** Base URL ending in `/`. */
  url: string;
  /** HMAC key. */
  secret: string;
  /** UTF-16 code units; a loaded code beyond it is refused. */
  maxDocLength: number;
}

/** An unexpected answer of the site (status kept for logs and metrics). */
export class SiteAnswerError extends Error {
  override name = "SiteAnswerError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** `sha256=<hex HMAC-SHA256 of data with secret>` */
export function signature(secret: string, data: string): string {
  return `sha256=${createHmac("sha256", secret).update(data, "utf8").digest("hex")}`;
}

export function httpSink(options: HttpSinkOptions): Required<Pick<Hooks, "save" | "load">> {
  const http = axios.create({ validateStatus: () => true, maxRedirects: 0, responseType: "json", maxBodyLength: Infinity, maxContentLength: Infinity });
  return {
    async save({ codespace, epoch, version, code, signal }) {
      const body = JSON.stringify({ codespace, epoch, version, code });
      const res = await http.put(options.url + encodeURIComponent(codespace), body, {
        signal,
        headers: {
          "content-type": "application/json",
          "x-codespace-signature": signature(options.secret, body),
          "idempotency-key": `${codespace}:${epoch}:${version}`,
        },
        transformRequest: [(d: string) => d],
        responseType: "text",
      });
      if (res.status >= 200 && res.status < 300) return "saved";
      if (res.status === 409) return "conflict";
      throw new SiteAnswerError(res.status, `the save endpoint answered ${res.status}`);
    },
    async load({ codespace, signal }) {
      const res = await http.get(options.url + encodeURIComponent(codespace), {
        signal,
        headers: { "x-codespace-signature": signature(options.secret, codespace) },
      });
      if (res.status === 404) return null;
      if (res.status !== 200) throw new SiteAnswerError(res.status, `the load endpoint answered ${res.status}`);
      const code = (res.data as { code?: unknown } | null)?.code;
      if (typeof code !== "string") throw new SiteAnswerError(res.status, "the load endpoint answered without a string code");
      if (code.length > options.maxDocLength) throw new SiteAnswerError(res.status, `the loaded code is longer than ${options.maxDocLength} UTF-16 code units`);
      return { code };
    },
  };
}
