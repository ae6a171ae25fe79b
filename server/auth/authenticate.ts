/**
 * The handshake of the `/codespace` namespace (docs/protocol.md, "Handshake"): runs the
 * authenticate hooks in order (a site's own first, then the built-ins: tmp- tokens, share tokens,
 * the site API) until one admits or refuses the token, and stores the result in `socket.data`.
 *
 * Errors reach the client as `connect_error` with `data.code`: `missing_token` (no token),
 * whatever code a hook refused with (`invalid_token`, `token_expired`, `auth_unavailable`, ...),
 * `auth_unavailable` when a hook failed unexpectedly or timed out (HOOK_TIMEOUT_MS), or when no hook
 * took the token (e.g. API_BASE_URL unset). A client that goes away during the check aborts it
 * (the hooks' `signal`) and is never joined.
 */
import type { Socket } from "socket.io";
import { AuthUnavailableError, CodespaceError, MissingTokenError } from "../errors.js";
import { HookTimeoutError, withTimeout, type AuthenticateHook, type HookFailures, type SocketAuth } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { AuthOutcome } from "../metrics.js";
import { isReservedCodespaceId } from "../store/reserved-keys.js";

/** Counts one handshake outcome (`codespace_auth_checks_total{outcome}`). */
export type AuthCounter = (outcome: AuthOutcome) => void;

export interface AuthenticatorOptions {
  hooks: readonly AuthenticateHook[];
  /** Bound of each hook call, ms (HOOK_TIMEOUT_MS). */
  timeoutMs: number;
  /** Hooks that bound themselves (the site API check: API_TIMEOUT_MS): not wrapped in `timeoutMs`. */
  selfBounded?: ReadonlySet<AuthenticateHook>;
  logger: Logger;
  count?: AuthCounter;
  failures?: HookFailures;
  /** Message of the refusal when no hook took the token. */
  unhandledMessage?: string;
}

/**
 * Resolves a token through the hooks. @throws CodespaceError: missing_token, a hook's refusal,
 * auth_unavailable
 */
export async function authenticate(
  opts: AuthenticatorOptions,
  token: unknown,
  handshake: Socket["handshake"],
  signal: AbortSignal,
): Promise<SocketAuth> {
  const count = opts.count ?? (() => {});
  if (typeof token !== "string" || token.length === 0) {
    count("missing_token");
    throw new MissingTokenError();
  }
  for (const [i, hook] of opts.hooks.entries()) {
    let auth: SocketAuth | undefined | null;
    try {
      auth = opts.selfBounded?.has(hook)
        ? await hook({ token, handshake, signal })
        : await withTimeout("authenticate", opts.timeoutMs, (s) => hook({ token, handshake, signal: s }), signal);
    } catch (err) {
      if (err instanceof CodespaceError) throw err;
      if (signal.aborted && !(err instanceof HookTimeoutError)) throw new AuthUnavailableError("the client went away");
      count("hook_failed");
      opts.failures?.report("authenticate", undefined, err);
      opts.logger.debug({ hook: i }, "authenticate hook failed");
      throw new AuthUnavailableError();
    }
    if (auth) {
      if (typeof auth.codespace !== "string" || auth.codespace.length === 0 || (auth.mode !== "edit" && auth.mode !== "view_only")) {
        count("hook_failed");
        opts.failures?.report("authenticate", undefined, new Error("an authenticate hook answered without a codespace or a valid mode"));
        throw new AuthUnavailableError();
      }
      if (isReservedCodespaceId(auth.codespace)) {
        count("hook_failed");
        opts.failures?.report("authenticate", undefined, new Error(`the codespace id ${JSON.stringify(auth.codespace)} names one of the server's own Redis keys (server/store/reserved-keys.ts); refused`));
        throw new AuthUnavailableError();
      }
      return auth.name ? { codespace: auth.codespace, mode: auth.mode, name: auth.name } : { codespace: auth.codespace, mode: auth.mode };
    }
  }
  count("no_api");
  throw new AuthUnavailableError(opts.unhandledMessage ?? "no authenticate hook took this token");
}

/**
 * Socket.IO namespace middleware: sets `socket.data` (SocketAuth) or fails the handshake with `data.code`.
 * A client that goes away while its token is being checked is never joined (no `socket.data`, no
 * room, no codespace, nothing in the store).
 */
export function authMiddleware(opts: AuthenticatorOptions) {
  const { logger } = opts;
  return (socket: Socket, next: (err?: Error) => void): void => {
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    // Most checks settle within this turn of the event loop (tmp- and share tokens, answers the
    // site API check has cached): the connection's `close` is listened to only by a check still
    // pending after it. A listener added and removed again leaves the connection's listener array
    // grown for good (Node keeps its capacity: ~150 bytes per idle connection).
    let settled = false;
    let watching = false;
    const watch = setImmediate(() => {
      if (settled) return;
      if (socket.conn.readyState !== "open") return void gone.abort();
      socket.conn.once("close", onClose);
      watching = true;
    });
    const unwatch = (): void => {
      settled = true;
      clearImmediate(watch);
      if (watching) socket.conn.off("close", onClose);
    };
    const refuse = (e: CodespaceError): void => {
      const out = new Error(e.message) as Error & { data: unknown };
      out.data = e.toWire();
      next(out);
    };
    authenticate(opts, socket.handshake.auth?.token, socket.handshake, gone.signal).then(
      (auth) => {
        unwatch();
        if (gone.signal.aborted || socket.conn.readyState !== "open") {
          logger.info({ socket: socket.id, codespace: auth.codespace }, "handshake abandoned: the client went away during the token check");
          return refuse(new AuthUnavailableError("the client went away"));
        }
        Object.assign(socket.data, auth);
        next();
      },
      (err: unknown) => {
        unwatch();
        const e = err instanceof CodespaceError ? err : new AuthUnavailableError();
        logger.info({ socket: socket.id, code: e.code, clientGone: gone.signal.aborted }, "handshake refused");
        refuse(e);
      },
    );
  };
}
