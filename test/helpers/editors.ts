/**
 * Many real editors for scale-out tests: each is a `CodespaceClient` (client/) that inserts unique
 * markers `[<name>.<n>]` at the end of the document, one at a time, waiting for each to be confirmed
 * (its broadcast applied: the server stored it). Checks: every confirmed marker is in the stored
 * code exactly once, every client converges on the stored code.
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { CodespaceClient } from "../../client/index.js";
import type { Transport } from "./socket.js";

/** Client transports: polling only, websocket only, or polling upgraded to websocket. */
export type Mix = "polling" | "websocket" | "upgrade";

export function transportsOf(mix: Mix): Transport[] {
  return mix === "polling" ? ["polling"] : mix === "websocket" ? ["websocket"] : ["polling", "websocket"];
}

export interface Editor {
  name: string;
  mix: Mix;
  client: CodespaceClient;
  /** Markers applied locally, in order. */
  applied: string[];
  /** Markers confirmed by the server (whenSynced resolved after them). */
  confirmed: string[];
  /** Transport-level events seen: disconnects, connect errors, upgrades. */
  disconnects: number;
  connectErrors: string[];
  upgraded: boolean;
  /** Failed WebSocket upgrades (engine.io `upgradeError`). */
  upgradeErrors: number;
  /** Local changes dropped by a reset (must stay 0). */
  dropped: number;
}

export interface EditorOptions {
  /** Reconnect quickly in tests (ms). Default 100 / 1000. */
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  /** Connect timeout (ms). Default 20000. */
  timeoutMs?: number;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, fail]).finally(() => clearTimeout(timer));
}

/** Connects one editor (withCredentials: a cookie jar, for HAProxy's stickiness cookie). */
export async function connectEditor(url: string, token: string, name: string, mix: Mix, opts: EditorOptions = {}): Promise<Editor> {
  const client = await withTimeout(
    CodespaceClient.connect(url, token, {
      transports: transportsOf(mix),
      socketOptions: {
        withCredentials: true,
        reconnectionDelay: opts.reconnectionDelay ?? 100,
        reconnectionDelayMax: opts.reconnectionDelayMax ?? 1000,
        timeout: opts.timeoutMs ?? 20_000,
      },
    }),
    opts.timeoutMs ?? 20_000,
    `editor ${name} (${mix}) connecting`,
  );
  const ed: Editor = { name, mix, client, applied: [], confirmed: [], disconnects: 0, connectErrors: [], upgraded: false, upgradeErrors: 0, dropped: 0 };
  client.socket.on("disconnect", () => ed.disconnects++);
  client.socket.on("connect_error", (err: Error) => ed.connectErrors.push(err.message));
  client.on("reset", (e) => (ed.dropped += e.dropped));
  client.on("error", () => {}); // transient errors (store_unavailable, ...) are retried by the client
  const engine = client.socket.io.engine;
  if (engine.transport.name === "websocket") ed.upgraded = mix !== "upgrade";
  engine.on("upgrade", () => (ed.upgraded = true));
  engine.on("upgradeError", () => ed.upgradeErrors++);
  return ed;
}

/** Applies one marker at the end of the document and waits for its confirmation. */
export async function editOnce(ed: Editor, timeoutMs = 30_000): Promise<void> {
  const marker = `[${ed.name}.${ed.applied.length}]`;
  ed.applied.push(marker);
  ed.client.applyLocal([{ from: ed.client.text.length, to: ed.client.text.length, insert: marker }]);
  await withTimeout(ed.client.whenSynced(), timeoutMs, `editor ${ed.name} confirming ${marker}`).catch((err: Error) => {
    const c = ed.client;
    err.message += ` (${ed.mix}; status ${c.status}, socket ${c.socket.connected ? "connected" : "not connected"}, ` +
      `pending ${c.pending}, version ${c.version}, disconnects ${ed.disconnects}, connect errors ${JSON.stringify(ed.connectErrors.slice(-3))})`;
    throw err;
  });
  ed.confirmed.push(marker);
}

/** A running `streamEdits`: confirmed edits so far, a wait for a count, and a stop. */
export interface EditStream {
  /** Edits confirmed so far, all editors together. */
  confirmed(): number;
  /** Resolves once `n` edits are confirmed (unbounded: wrap it in `withTimeout`). One waiter at a time. */
  reach(n: number): Promise<void>;
  /** Lets every editor finish its current edit, then stops; rejects if that takes over `timeoutMs` or an edit failed. */
  stop(timeoutMs: number): Promise<void>;
}

/** Every editor edits (`editOnce`, each confirmation bounded by `editTimeoutMs`) again and again until `stop()`. */
export function streamEdits(editors: Editor[], editTimeoutMs: number): EditStream {
  let stop = false;
  let confirmed = 0;
  let onProgress: (() => void) | undefined;
  const streams = editors.map(async (ed) => {
    while (!stop) {
      await editOnce(ed, editTimeoutMs);
      confirmed++;
      onProgress?.();
    }
  });
  return {
    confirmed: () => confirmed,
    reach: (n) =>
      confirmed >= n ? Promise.resolve() : new Promise((resolve) => (onProgress = () => confirmed >= n && resolve())),
    async stop(timeoutMs) {
      stop = true;
      await withTimeout(Promise.all(streams), timeoutMs, "streams ending");
    },
  };
}

/** Each editor edits `n` times, all editors concurrently. */
export async function editAll(editors: Editor[], n: number, timeoutMs?: number): Promise<void> {
  await Promise.all(editors.map(async (ed) => {
    for (let i = 0; i < n; i++) await editOnce(ed, timeoutMs);
  }));
}

/** The stored state of a codespace (hash `<key>`: code, version). */
export async function stored(redis: Redis, key: string): Promise<{ code: string; version: number }> {
  const [code, version] = await redis.hmget(key, "code", "version");
  assert.ok(code !== null && version !== null, `codespace ${key} is not in Redis`);
  return { code, version: Number(version) };
}

/** Occurrences of `needle` in `hay`. */
export function count(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * Waits (bounded) until every editor has no unconfirmed change and has reached the stored version,
 * then asserts: same text as Redis, every confirmed marker exactly once, nothing dropped.
 */
export async function assertConverged(redis: Redis, key: string, editors: Editor[], timeoutMs = 30_000): Promise<string> {
  await withTimeout(Promise.all(editors.map((ed) => ed.client.whenSynced())), timeoutMs, "editors synced");
  const { code, version } = await stored(redis, key);
  await withTimeout(
    Promise.all(editors.map((ed) => ed.client.waitForVersion(version))),
    timeoutMs,
    `editors reaching version ${version}`,
  );
  for (const ed of editors) {
    assert.equal(ed.dropped, 0, `${ed.name}: local changes dropped by a reset`);
    assert.equal(ed.client.version, version, `${ed.name}: version`);
    assert.equal(ed.client.text, code, `${ed.name} (${ed.mix}) did not converge`);
    // After whenSynced every applied marker is confirmed (acknowledged): each must be stored once.
    for (const m of ed.applied) assert.equal(count(code, m), 1, `${m} is in the stored code ${count(code, m)} times`);
  }
  return code;
}

export function closeAll(editors: Editor[]): void {
  for (const ed of editors) ed.client.close();
}

/** Resolves once `ed` runs on WebSocket (at once for websocket-only clients). */
export function upgradedOrNow(ed: Editor): Promise<void> {
  if (ed.upgraded || ed.client.socket.io.engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => ed.client.socket.io.engine.once("upgrade", () => resolve()));
}

/** Resolves once `output()` matches `re` (checked every 50 ms), rejects after `timeoutMs`. */
export async function waitForOutput(output: () => string, re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = output().match(re);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no output matching ${re} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
