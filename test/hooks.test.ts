/**
 * The hooks seam (`createServer(config, { hooks })`, server/hooks.ts): a site's authenticate, save,
 * load and notification hooks, used the way a site embedding the server would. A hook that throws
 * or never resolves affects only its own handshake or codespace: the others are admitted, edited
 * and saved meanwhile, and every failure is counted. In-process server, embedded store, real
 * socket.io-client editors.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import type { CodespaceServer } from "../server/index.js";
import type { CommitEvent, ConnectionEvent, Hooks, SaveRequest } from "../server/hooks.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { closeAll, connectEditor, editOnce, withTimeout, type Editor } from "./helpers/editors.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";

const never = <T>(): Promise<T> => new Promise<T>(() => {});

const saved: Omit<SaveRequest, "signal">[] = [];
const commits: CommitEvent[] = [];
const connects: ConnectionEvent[] = [];
const disconnects: (ConnectionEvent & { reason: string })[] = [];
const expirations: string[] = [];
const loads: string[] = [];

const hooks: Hooks = {
  authenticate: ({ token }) => {
    if (token === "throw") throw new Error("authenticate boom");
    if (token === "hang") return never();
    if (token.startsWith("cs:")) return { codespace: token.slice(3), mode: "edit", name: `user of ${token.slice(3)}` };
    return undefined; // the built-ins decide (tmp- tokens)
  },
  onCommit(e) {
    if (e.codespace === "a") throw new Error("onCommit boom");
    if (e.codespace === "b") return never();
    commits.push(e);
    return undefined;
  },
  onConnect: (e) => void connects.push(e),
  onDisconnect: (e) => void disconnects.push(e),
  onExpired: ({ codespace }) => void expirations.push(codespace),
  async save({ signal: _signal, ...req }) {
    if (req.codespace === "a") throw new Error("save boom");
    if (req.codespace === "b") return never();
    saved.push(req);
    return "saved";
  },
  async load({ codespace }) {
    loads.push(codespace);
    return codespace === "c" ? { code: "loaded:" } : null;
  },
};

let srv: InProcessServer;
before(async () => {
  srv = await startInProcessServer(
    { TMP_CODESPACE_EXPIRE_UPDATE: "1", HOOK_TIMEOUT_MS: "300", SAVE_DEBOUNCE_MS: "50", SAVE_MAX_WAIT_MS: "200", SAVE_TIMEOUT_MS: "300", SAVE_LEASE_MS: "1000", SAVE_RETRY_MAX_MS: "200" },
    { hooks },
  );
});
after(async () => srv?.close());

async function metric(s: CodespaceServer, name: string, labels: Record<string, string>): Promise<number> {
  const m = await s.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value ?? 0;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("an authenticate hook that throws or hangs refuses only that handshake (auth_unavailable); others are admitted meanwhile", { timeout: 30_000 }, async () => {
  const hanging = expectConnectError(srv.url, "hang", ["websocket"], { timeoutMs: 10_000 });
  assert.equal((await expectConnectError(srv.url, "throw")).data?.code, "auth_unavailable");
  const tmp = await connectSocket(srv.url, "tmp-hooks");
  const own = await connectSocket(srv.url, "cs:d");
  assert.equal(own.connected.codespace, "d");
  assert.equal(own.connected.users.find((u) => u.id === own.connected.id)?.name, "user of d");
  tmp.socket.close();
  own.socket.close();
  assert.equal((await hanging).data?.code, "auth_unavailable");
  assert.equal(await metric(srv.server, "codespace_hook_failures_total", { hook: "authenticate", reason: "error" }), 1);
  assert.equal(await metric(srv.server, "codespace_hook_failures_total", { hook: "authenticate", reason: "timeout" }), 1);
  await until(() => connects.some((c) => c.codespace === "d" && c.mode === "edit"), "onConnect of d");
});

test("onCommit and save hooks that throw (a) or never resolve (b) affect only their codespace: c is edited, committed and saved meanwhile", { timeout: 60_000 }, async () => {
  const editors: Editor[] = [];
  try {
    for (const cs of ["a", "b", "c"]) editors.push(await connectEditor(srv.url, `cs:${cs}`, cs, "websocket"));
    assert.equal(editors[2]!.client.text, "loaded:", "c starts from the code the load hook gave");
    assert.equal(editors[0]!.client.text, "", "a is new (load answered null)");
    for (let i = 0; i < 5; i++) await withTimeout(Promise.all(editors.map((ed) => editOnce(ed, 10_000))), 20_000, `round ${i}`);
    const c = editors[2]!.client;
    await until(() => saved.some((s) => s.codespace === "c" && s.version === c.version), "c saved at its last version");
    const last = saved.filter((s) => s.codespace === "c").at(-1)!;
    assert.equal(last.code, c.text);
    assert.deepEqual(saved.filter((s) => s.codespace !== "c"), [], "a or b reported saved");
    assert.deepEqual([...new Set(commits.map((e) => e.codespace))], ["c"]);
    assert.deepEqual(commits.map((e) => e.version), [1, 2, 3, 4, 5]);
    for (const e of commits) assert.equal(e.updates.length, 1);
    // every failure was counted (the hanging ones after HOOK_TIMEOUT_MS / SAVE_TIMEOUT_MS)
    await until(async () => (await metric(srv.server, "codespace_hook_failures_total", { hook: "onCommit", reason: "timeout" })) >= 5, "onCommit timeouts of b");
    assert.ok((await metric(srv.server, "codespace_hook_failures_total", { hook: "onCommit", reason: "error" })) >= 5);
    await until(async () => (await metric(srv.server, "codespace_hook_failures_total", { hook: "save", reason: "timeout" })) >= 1, "a save timeout of b");
    assert.ok((await metric(srv.server, "codespace_hook_failures_total", { hook: "save", reason: "error" })) >= 1);
    assert.ok((await metric(srv.server, "codespace_saves_total", { result: "failed" })) >= 2);
    // a and b keep being editable while their saves fail
    await withTimeout(Promise.all(editors.slice(0, 2).map((ed) => editOnce(ed, 10_000))), 20_000, "a and b after the failures");
    assert.deepEqual(loads.sort(), ["a", "b", "c", "d"], "each absent codespace loaded once");
  } finally {
    closeAll(editors);
  }
});

test("onConnect, onDisconnect and onExpired receive their events", { timeout: 30_000 }, async () => {
  const { socket, connected } = await connectSocket(srv.url, "tmp-expiring");
  await until(() => connects.some((c) => c.socket === connected.id && c.codespace === "tmp-expiring"), "onConnect");
  // TMP_CODESPACE_EXPIRE_UPDATE=1: the codespace expires, its socket is disconnected
  await until(() => expirations.includes("tmp-expiring"), "onExpired");
  await until(() => disconnects.some((d) => d.socket === connected.id && d.codespace === "tmp-expiring" && d.mode === "edit"), "onDisconnect");
  socket.close();
});

test("an authenticate hook answering a codespace id that names one of the server's own keys is refused", { timeout: 30_000 }, async () => {
  // with an empty KEY_PREFIX, codespace "codespace:saves" would be the due-save index itself
  const reserved = await startInProcessServer({}, { hooks: { authenticate: ({ token }) => ({ codespace: token, mode: "edit" }) } });
  try {
    for (const id of ["codespace:saves", "presence:nodes", "presence:members:x"]) {
      assert.equal((await expectConnectError(reserved.url, id)).data?.code, "auth_unavailable", id);
    }
    const ok = await connectSocket(reserved.url, "codespace:saves-not");
    assert.equal(ok.connected.codespace, "codespace:saves-not", "only the reserved ids themselves are refused");
    ok.socket.close();
    const failures = (await reserved.server.metrics.registry.getSingleMetric("codespace_hook_failures_total")?.get())?.values ?? [];
    assert.equal(failures.find((v) => v.labels.hook === "authenticate")?.value, 3, "each refusal is reported as a hook failure (one warn line)");
  } finally {
    await reserved.server.close();
  }
});

test("a loaded code with a lone surrogate is stored and shown with U+FFFD in its place (as UTF-8 storage holds it)", { timeout: 30_000 }, async () => {
  const site = await startInProcessServer({}, { hooks: { authenticate: () => ({ codespace: "lone", mode: "edit" }), load: async () => ({ code: "a\uD800b😀" }) } });
  try {
    const { socket, connected } = await connectSocket(site.url, "t");
    assert.equal(connected.code, "a\uFFFDb😀", "the lone surrogate is replaced, the pair kept");
    socket.close();
  } finally {
    await site.server.close();
  }
});
