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
import type { Mode } from "./protocol/events.js";

/** What a socket is allowed, stored in `socket.data` by the middleware. */
export interface SocketAuth {
  codespace: string;
  mode: Mode;
  /** Display name from the site API, when it returned one (presence). */
  name?: string;
}

const TMP_TOKEN = /^tmp-[A-Za-z0-9_-]{1,64}$/;

const apiResponse = Joi.object({
  uuid: Joi.string().min(1).max(128).required(),
  mode: Joi.string().valid("edit", "view_only").required(),
  // optional display name for presence; anything else than a short string is ignored, not refused
  name: Joi.any(),
}).unknown(true);

/** Checks share tokens; one instance per server. */
export class TokenChecker {
  private readonly http: AxiosInstance;

  constructor(
    private readonly config: Pick<Config, "apiBaseUrl" | "apiTimeoutMs">,
    private readonly logger: Logger,
  ) {
    this.http = axios.create({ timeout: config.apiTimeoutMs, validateStatus: () => true, maxRedirects: 0 });
  }

  /**
   * Resolves a token to a codespace and mode.
   * @throws MissingTokenError, InvalidTokenError, AuthUnavailableError
   */
  async check(token: unknown): Promise<SocketAuth> {
    if (typeof token !== "string" || token.length === 0) throw new MissingTokenError();
    if (token.startsWith("tmp-")) {
      if (!TMP_TOKEN.test(token)) throw new InvalidTokenError("a tmp- token is tmp- followed by 1 to 64 of A-Z a-z 0-9 _ -");
      return { codespace: token, mode: "edit" };
    }
    const base = this.config.apiBaseUrl;
    if (!base) throw new AuthUnavailableError("this server checks no share tokens: set API_BASE_URL (only tmp- tokens work without it)");
    const url = `${base}codespace/${encodeURIComponent(token)}/?fields=uuid,mode`;
    let res;
    try {
      res = await this.http.get(url, { signal: AbortSignal.timeout(this.config.apiTimeoutMs), responseType: "json" });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, outcome: "unreachable" }, "auth API call failed");
      throw new AuthUnavailableError();
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) throw new InvalidTokenError();
    if (res.status !== 200) {
      this.logger.warn({ status: res.status, outcome: "bad_status" }, "auth API answered an unexpected status");
      throw new AuthUnavailableError();
    }
    const { value, error } = apiResponse.validate(res.data);
    if (error) {
      this.logger.warn({ outcome: "malformed", reason: error.message }, "auth API answered a malformed body");
      throw new AuthUnavailableError();
    }
    const name = typeof value.name === "string" ? value.name.trim().slice(0, 100) : "";
    return name ? { codespace: value.uuid, mode: value.mode, name } : { codespace: value.uuid, mode: value.mode };
  }
}

/** Socket.IO namespace middleware: sets `socket.data` (SocketAuth) or fails the handshake with `data.code`. */
export function authMiddleware(checker: TokenChecker) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    checker.check(socket.handshake.auth?.token).then(
      (auth) => {
        Object.assign(socket.data, auth);
        next();
      },
      (err: unknown) => {
        const e = err instanceof CodespaceError ? err : new AuthUnavailableError();
        const out = new Error(e.message) as Error & { data: unknown };
        out.data = e.toWire();
        next(out);
      },
    );
  };
}
