/**
 * Built-in authenticate hook asking the site's HTTP API (API_BASE_URL), the last one tried:
 * `GET ${API_BASE_URL}codespace/${token}/?fields=uuid,mode`, bounded as a whole by API_TIMEOUT_MS
 * (axios `timeout` only bounds socket inactivity in Node, so an AbortSignal bounds the whole
 * response). Successful checks are reused for AUTH_CACHE_MS (lru-cache, at most
 * AUTH_CACHE_MAX_ENTRIES, keyed by SHA-256 digests of the tokens, never the tokens).
 * The token is never logged (only outcomes, statuses and messages without the URL).
 * @throws InvalidTokenError (401/403/404, a dot segment), AuthUnavailableError (timeout, network,
 *   other statuses, malformed body, client gone)
 */
import { createHash } from "node:crypto";
import axios from "axios";
import Joi from "joi";
import { LRUCache } from "lru-cache";
import type { Config } from "../config.js";
import { AuthUnavailableError, InvalidTokenError } from "../errors.js";
import type { AuthenticateHook, SocketAuth } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { AuthCounter } from "./authenticate.js";
import type { AuthOutcome } from "../metrics.js";

/** Largest site-API answer read, bytes. */
const MAX_API_RESPONSE_BYTES = 64 * 1024;

const apiResponse = Joi.object({
  // an id starting with "tmp-" would share the namespace of temporary codespaces: refused
  uuid: Joi.string().min(1).max(128).pattern(/^tmp-/, { invert: true }).required(),
  mode: Joi.string().valid("edit", "view_only").required(),
  // optional display name for presence; anything else than a short string is ignored, not refused
  name: Joi.any(),
}).unknown(true);

export type SiteApiConfig = Pick<Config, "apiTimeoutMs"> & Partial<Pick<Config, "authCacheMs" | "authCacheMaxEntries">> & { apiBaseUrl: string };

export interface SiteApiOptions {
  logger: Logger;
  /** Counts handshake outcomes (`codespace_auth_checks_total`). */
  count?: AuthCounter;
  /** Counts API calls by outcome (`codespace_auth_api_calls_total`). */
  countCall?: (outcome: AuthOutcome) => void;
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

export function siteApi(config: SiteApiConfig, options: SiteApiOptions): AuthenticateHook {
  const { logger } = options;
  const count = options.count ?? (() => {});
  const countCall = options.countCall ?? (() => {});
  const http = axios.create({
    timeout: config.apiTimeoutMs,
    validateStatus: () => true,
    maxRedirects: 0,
    // an answer is a few fields: a huge body is a broken API, not something to buffer
    maxContentLength: MAX_API_RESPONSE_BYTES,
  });
  const cache = config.authCacheMs
    ? new LRUCache<string, SocketAuth>({ max: config.authCacheMaxEntries ?? 10_000, ttl: config.authCacheMs, ttlAutopurge: false })
    : undefined;
  function fail(outcome: AuthOutcome, err: Error): never {
    count(outcome);
    countCall(outcome);
    throw err;
  }

  return async ({ token, signal }) => {
    if (token === "." || token === "..") {
      // a dot segment would be resolved away in the API URL and reach another endpoint
      count("invalid_token");
      throw new InvalidTokenError();
    }
    const key = cache ? digest(token) : "";
    const cached = cache?.get(key);
    if (cached) {
      count("cached");
      return { ...cached };
    }
    const url = `${config.apiBaseUrl}codespace/${encodeURIComponent(token)}/?fields=uuid,mode`;
    const timeout = AbortSignal.timeout(config.apiTimeoutMs);
    let res;
    try {
      res = await http.get(url, { signal: AbortSignal.any([timeout, signal]), responseType: "json" });
    } catch (err) {
      if (signal.aborted && !timeout.aborted) {
        logger.debug({ outcome: "aborted" }, "auth API call abandoned: the client went away");
        fail("aborted", new AuthUnavailableError("the client went away"));
      }
      const timedOut = timeout.aborted || (err as { code?: string }).code === "ECONNABORTED";
      const outcome = timedOut ? "timeout" : "unreachable";
      logger.warn({ err: (err as Error).message, outcome, timeoutMs: config.apiTimeoutMs }, "auth API call failed");
      fail(outcome, new AuthUnavailableError());
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) fail("invalid_token", new InvalidTokenError());
    if (res.status !== 200) {
      logger.warn({ status: res.status, outcome: "bad_status" }, "auth API answered an unexpected status");
      fail("bad_status", new AuthUnavailableError());
    }
    const { value, error } = apiResponse.validate(res.data);
    if (error) {
      logger.warn({ outcome: "malformed", reason: error.message }, "auth API answered a malformed body");
      fail("malformed", new AuthUnavailableError());
    }
    const name = typeof value.name === "string" ? value.name.trim().slice(0, 100) : "";
    const auth: SocketAuth = name ? { codespace: value.uuid, mode: value.mode, name } : { codespace: value.uuid, mode: value.mode };
    cache?.set(key, auth);
    count("ok");
    countCall("ok");
    return { ...auth };
  };
}
