/**
 * Handshake middleware for the `/codespace` namespace: decides which codespace a socket joins and
 * in which mode, from `auth.token` (docs/protocol.md, "Handshake").
 *
 * - `tmp-<id>`: temporary codespace named by the token, mode `edit`, no API call.
 * - other non-empty strings: `GET ${API_BASE_URL}codespace/${token}/?fields=uuid,mode`, bounded as a
 *   whole by API_TIMEOUT_MS (axios `timeout` only bounds socket inactivity in Node, so an
 *   AbortSignal bounds the whole response).
 * Errors reach the client as `connect_error` with `data.code`: missing_token, invalid_token, auth_unavailable.
 */
import axios, { type AxiosInstance } from "axios";
import Joi from "joi";
import type { Socket } from "socket.io";
import type { Config } from "./config.js";
import { AuthUnavailableError, CodespaceError, InvalidTokenError, MissingTokenError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { AuthOutcome, Metrics } from "./metrics.js";
import type { Mode } from "./protocol/events.js";
import { AuthCache } from "./auth-cache.js";

/** What a socket is allowed, stored in `socket.data` by the middleware. */
export interface SocketAuth {
  codespace: string;
  mode: Mode;
  /** Display name from the site API, when it returned one (presence). */
  name?: string;
}

const TMP_TOKEN = /^tmp-[A-Za-z0-9_-]{1,64}$/;
/** Largest site-API answer read, bytes. */
const MAX_API_RESPONSE_BYTES = 64 * 1024;

const apiResponse = Joi.object({
  // an id starting with "tmp-" would share the namespace of temporary codespaces: refused
  uuid: Joi.string().min(1).max(128).pattern(/^tmp-/, { invert: true }).required(),
  mode: Joi.string().valid("edit", "view_only").required(),
  // optional display name for presence; anything else than a short string is ignored, not refused
  name: Joi.any(),
}).unknown(true);

export interface TokenCheckerOptions {
  metrics?: Metrics;
}

/**
 * Checks share tokens; one instance per server. The token itself is never logged (only outcomes,
 * statuses and error messages that do not contain the URL).
 */
export class TokenChecker {
  private readonly http: AxiosInstance;
  private readonly cache: AuthCache | undefined;
  private readonly metrics: Metrics | undefined;

  constructor(
    private readonly config: Pick<Config, "apiBaseUrl" | "apiTimeoutMs"> & Partial<Pick<Config, "authCacheMs" | "authCacheMaxEntries">>,
    private readonly logger: Logger,
    options: TokenCheckerOptions = {},
  ) {
    this.http = axios.create({
      timeout: config.apiTimeoutMs,
      validateStatus: () => true,
      maxRedirects: 0,
      // an answer is a few fields: a huge body is a broken API, not something to buffer
      maxContentLength: MAX_API_RESPONSE_BYTES,
    });
    this.cache = config.authCacheMs ? new AuthCache(config.authCacheMs, config.authCacheMaxEntries ?? 10_000) : undefined;
    this.metrics = options.metrics;
  }

  /**
   * Resolves a token to a codespace and mode. Successful API checks are reused for AUTH_CACHE_MS
   * when set. `signal` aborts the API call (the client went away): AuthUnavailableError.
   * @throws MissingTokenError, InvalidTokenError, AuthUnavailableError
   */
  async check(token: unknown, signal?: AbortSignal): Promise<SocketAuth> {
    if (typeof token !== "string" || token.length === 0) {
      this.count("missing_token");
      throw new MissingTokenError();
    }
    if (token.startsWith("tmp-")) {
      if (!TMP_TOKEN.test(token)) {
        this.count("invalid_token");
        throw new InvalidTokenError("a tmp- token is tmp- followed by 1 to 64 of A-Z a-z 0-9 _ -");
      }
      this.count("tmp");
      return { codespace: token, mode: "edit" };
    }
    if (token === "." || token === "..") {
      // a dot segment would be resolved away in the API URL and reach another endpoint
      this.count("invalid_token");
      throw new InvalidTokenError();
    }
    const base = this.config.apiBaseUrl;
    if (!base) {
      this.count("no_api");
      throw new AuthUnavailableError("this server checks no share tokens: set API_BASE_URL (only tmp- tokens work without it)");
    }
    const cached = this.cache?.get(token);
    if (cached) {
      this.count("cached");
      return cached;
    }
    const auth = await this.askApi(base, token, signal);
    this.cache?.set(token, auth);
    this.count("ok", true);
    return auth;
  }

  /** Counts a check outcome (and an API call outcome when the API was asked). */
  private count(outcome: AuthOutcome, apiCall = false): void {
    this.metrics?.authChecks.inc({ outcome });
    if (apiCall) this.metrics?.authApiCalls.inc({ outcome });
  }

  private fail(outcome: AuthOutcome, err: Error): never {
    this.count(outcome, true);
    throw err;
  }

  /** One site-API request, bounded as a whole by API_TIMEOUT_MS. */
  private async askApi(base: string, token: string, signal?: AbortSignal): Promise<SocketAuth> {
    const url = `${base}codespace/${encodeURIComponent(token)}/?fields=uuid,mode`;
    const timeout = AbortSignal.timeout(this.config.apiTimeoutMs);
    let res;
    try {
      res = await this.http.get(url, { signal: signal ? AbortSignal.any([timeout, signal]) : timeout, responseType: "json" });
    } catch (err) {
      if (signal?.aborted) {
        this.logger.debug({ outcome: "aborted" }, "auth API call abandoned: the client went away");
        this.fail("aborted", new AuthUnavailableError("the client went away"));
      }
      const timedOut = timeout.aborted || (err as { code?: string }).code === "ECONNABORTED";
      const outcome = timedOut ? "timeout" : "unreachable";
      this.logger.warn({ err: (err as Error).message, outcome, timeoutMs: this.config.apiTimeoutMs }, "auth API call failed");
      this.fail(outcome, new AuthUnavailableError());
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) this.fail("invalid_token", new InvalidTokenError());
    if (res.status !== 200) {
      this.logger.warn({ status: res.status, outcome: "bad_status" }, "auth API answered an unexpected status");
      this.fail("bad_status", new AuthUnavailableError());
    }
    const { value, error } = apiResponse.validate(res.data);
    if (error) {
      this.logger.warn({ outcome: "malformed", reason: error.message }, "auth API answered a malformed body");
      this.fail("malformed", new AuthUnavailableError());
    }
    const name = typeof value.name === "string" ? value.name.trim().slice(0, 100) : "";
    return name ? { codespace: value.uuid, mode: value.mode, name } : { codespace: value.uuid, mode: value.mode };
  }
}

/**
 * Socket.IO namespace middleware: sets `socket.data` (SocketAuth) or fails the handshake with `data.code`.
 * A client that goes away while its token is being checked aborts the API call and is never joined
 * (its socket gets no `socket.data`, no room, no codespace, nothing in the store).
 */
export function authMiddleware(checker: TokenChecker, logger?: Logger) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    socket.conn.once("close", onClose);
    const refuse = (e: CodespaceError): void => {
      const out = new Error(e.message) as Error & { data: unknown };
      out.data = e.toWire();
      next(out);
    };
    checker.check(socket.handshake.auth?.token, gone.signal).then(
      (auth) => {
        socket.conn.off("close", onClose);
        if (gone.signal.aborted || socket.conn.readyState !== "open") {
          logger?.info({ socket: socket.id, codespace: auth.codespace }, "handshake abandoned: the client went away during the token check");
          return refuse(new AuthUnavailableError("the client went away"));
        }
        Object.assign(socket.data, auth);
        next();
      },
      (err: unknown) => {
        socket.conn.off("close", onClose);
        const e = err instanceof CodespaceError ? err : new AuthUnavailableError();
        logger?.info({ socket: socket.id, code: e.code, clientGone: gone.signal.aborted }, "handshake refused");
        refuse(e);
      },
    );
  };
}
