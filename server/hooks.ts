/**
 * The extension seam: typed hooks a site passes to `createServer(config, { hooks })`
 * (docs/integration.md, "Hooks"). The built-ins (tmp- tokens, local share tokens, the site API
 * check, the HTTP save sink) are hooks too, wired by `server/index.ts` through this same seam.
 *
 * Every hook is bounded: `authenticate`, `load` and `save` by their own timeouts (HOOK_TIMEOUT_MS,
 * SAVE_TIMEOUT_MS), the notification hooks (`onCommit`, `onConnect`, `onDisconnect`, `onExpired`)
 * are never awaited by the server at all. A hook that throws or hangs affects only the codespace
 * (or handshake) it was called for: it gets a log line naming the hook and the codespace, and
 * `codespace_hook_failures_total{hook, reason}` (reason `error` or `timeout`).
 */
import type { Socket } from "socket.io";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "./logger.js";
import type { Mode, WireUpdate } from "./protocol/events.js";

/** What a socket is allowed, stored in `socket.data` once a handshake is admitted. */
export interface SocketAuth {
  codespace: string;
  mode: Mode;
  /** Display name (presence), when the authenticating hook gave one. */
  name?: string;
}

export interface AuthenticateContext {
  /** `auth.token` of the handshake: a non-empty string (an absent one is refused with `missing_token` first). */
  token: string;
  /** The Socket.IO handshake (headers, address, query, auth). */
  handshake: Socket["handshake"];
  /** Aborted when the client goes away or the hook's time is up. */
  signal: AbortSignal;
}

/**
 * Decides a handshake. Returns the codespace and mode to admit the socket; `undefined` (or null)
 * when the token is not this hook's kind, so the next hook is asked; throws a CodespaceError
 * (`invalid_token`, `token_expired`, `auth_unavailable`, ...) to refuse. Any other error, or no
 * answer within HOOK_TIMEOUT_MS, refuses with `auth_unavailable`.
 */
export type AuthenticateHook = (ctx: AuthenticateContext) => Promise<SocketAuth | undefined | null> | SocketAuth | undefined | null;

/** One commit, as `onCommit` receives it: updates that became versions `version - updates.length + 1 .. version`. */
export interface CommitEvent {
  codespace: string;
  epoch: string;
  /** Version after the last update. */
  version: number;
  updates: readonly WireUpdate[];
}

export interface ConnectionEvent {
  codespace: string;
  /** Socket id. */
  socket: string;
  mode: Mode;
}

/** What `save` receives: the full code of `codespace` at `version` of `epoch`. */
export interface SaveRequest {
  codespace: string;
  epoch: string;
  version: number;
  /** Full text (UTF-16 string). */
  code: string;
  /** Aborted after SAVE_TIMEOUT_MS. */
  signal: AbortSignal;
}

/**
 * Outcome of a save: `saved` (the site has this version), `conflict` (the site holds something newer:
 * this version is not sent again). Throwing (or timing out) means "retry later".
 */
export type SaveOutcome = "saved" | "conflict";

export interface LoadRequest {
  codespace: string;
  /** Aborted after SAVE_TIMEOUT_MS. */
  signal: AbortSignal;
}

/** The hooks `createServer` takes; all optional. */
export interface Hooks {
  /** Tried in order, before the built-ins (tmp- tokens, share tokens, the site API). */
  authenticate?: AuthenticateHook | readonly AuthenticateHook[];
  /** After a commit made by this process (not awaited). */
  onCommit?(event: CommitEvent): unknown;
  /** A socket joined a codespace on this process (not awaited). */
  onConnect?(event: ConnectionEvent): unknown;
  /** A socket left (not awaited). */
  onDisconnect?(event: ConnectionEvent & { reason: string }): unknown;
  /** A codespace's stored state expired or was deleted (not awaited; every process watching it calls it). */
  onExpired?(event: { codespace: string }): unknown;
  /** Durable sink: replaces the HTTP sink of SAVE_URL. See SaveOutcome. */
  save?(req: SaveRequest): Promise<SaveOutcome>;
  /**
   * Source of codespaces absent from the store: `{ code }`, or null for a new (empty) codespace.
   * Throwing (or timing out) refuses the handshake with `codespace_unavailable`; nothing is created.
   */
  load?(req: LoadRequest): Promise<{ code: string } | null>;
}

/** Hooks with `authenticate` as a list (the built-ins appended). */
export interface ResolvedHooks extends Omit<Hooks, "authenticate"> {
  authenticate: readonly AuthenticateHook[];
}

/** Merges a site's hooks with the built-ins: the site's authenticate hooks first, its save/load win. */
export function mergeHooks(site: Hooks | undefined, builtins: Hooks): ResolvedHooks {
  const list = (h: Hooks | undefined): AuthenticateHook[] =>
    !h?.authenticate ? [] : typeof h.authenticate === "function" ? [h.authenticate] : [...h.authenticate];
  const pick = <K extends keyof Hooks>(k: K): Hooks[K] => site?.[k] ?? builtins[k];
  return {
    authenticate: [...list(site), ...list(builtins)],
    onCommit: pick("onCommit"),
    onConnect: pick("onConnect"),
    onDisconnect: pick("onDisconnect"),
    onExpired: pick("onExpired"),
    save: pick("save"),
    load: pick("load"),
  };
}

/**
 * Thrown by `withTimeout` when a hook did not settle in time. The `save` and `load` hooks are the
 * built-in HTTP sink when SAVE_URL is set: the message names both.
 */
export class HookTimeoutError extends Error {
  override name = "HookTimeoutError";
  constructor(hook: string, ms: number) {
    super(hook === "save" || hook === "load" ? `no answer to the ${hook} within ${ms} ms (SAVE_URL, or the site's ${hook} hook)` : `the ${hook} hook did not settle within ${ms} ms`);
  }
}

/**
 * Runs `fn` with an AbortSignal that fires after `ms`; rejects with HookTimeoutError then, whether
 * or not `fn` honours the signal (a hook that never settles is abandoned, not awaited).
 */
export async function withTimeout<T>(hook: string, ms: number, fn: (signal: AbortSignal) => Promise<T> | T, outer?: AbortSignal): Promise<T> {
  const ctl = new AbortController();
  const onOuter = (): void => ctl.abort(outer?.reason);
  outer?.addEventListener("abort", onOuter, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort(new HookTimeoutError(hook, ms));
      reject(new HookTimeoutError(hook, ms));
    }, ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(() => fn(ctl.signal)), timeout]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onOuter);
  }
}

/** Counts and logs hook failures. */
export class HookFailures {
  private readonly counter: Counter<"hook" | "reason">;

  constructor(registry: Registry, private readonly logger: Logger) {
    this.counter = new Counter({
      name: "codespace_hook_failures_total",
      help: "Hook calls that threw or timed out, by hook and reason (error, timeout)",
      labelNames: ["hook", "reason"] as const,
      registers: [registry],
    });
  }

  /** Counts a failure without logging it (the caller logs its own line). */
  count(hook: string, err: unknown): void {
    this.counter.inc({ hook, reason: err instanceof HookTimeoutError ? "timeout" : "error" });
  }

  /** One warn line naming the hook and the codespace, and the counter. */
  report(hook: string, codespace: string | undefined, err: unknown): void {
    const reason = err instanceof HookTimeoutError ? "timeout" : "error";
    this.counter.inc({ hook, reason });
    this.logger.warn({ hook, codespace, reason, err: err instanceof Error ? err.message : String(err) }, "hook failed");
  }

  /** Calls a notification hook without awaiting it; a throw, rejection or hang is reported, never propagated. */
  notify<E>(hook: string, fn: ((event: E) => unknown) | undefined, event: E & { codespace: string }, timeoutMs: number): void {
    if (!fn) return;
    withTimeout(hook, timeoutMs, () => fn(event)).catch((err: unknown) => this.report(hook, event.codespace, err));
  }
}
