/**
 * The embedded default (no REDIS_URL) keeps its codespaces in DATA_DIR across restarts of the real
 * server process: after a SIGTERM (written at shutdown) and after a SIGKILL that follows a periodic
 * write, a connected CodespaceClient reconnects to the same epoch and version, keeps the edits it
 * made while the server was down and sends them (no reset, nothing dropped). Saved codespaces whose
 * TTL ran out are not restored and their files are removed.
 */
import { after, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CodespaceClient, type ResetEvent } from "../client/index.js";
import { freePort } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";

const dirs: string[] = [];
const procs: ServerProcess[] = [];
const clients: CodespaceClient[] = [];

after(async () => {
  for (const c of clients) c.close();
  await Promise.allSettled(procs.map((p) => p.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "data-dir-test-"));
  dirs.push(d);
  return d;
}

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const p = await startServerProcess(env);
  procs.push(p);
  return p;
}

function fileOf(dir: string, codespace: string): string {
  return join(dir, createHash("sha256").update(codespace).digest("hex") + ".json");
}

/** Polls the codespace's file (bounded) until it holds `version`: the periodic write happened. */
async function writtenAt(dir: string, codespace: string, version: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rec = await readFile(fileOf(dir, codespace), "utf8").then((s) => JSON.parse(s) as { version: number }, () => null);
    if (rec && rec.version >= version) return;
    if (Date.now() > deadline) throw new Error(`the data file never reached version ${version} (last: ${rec?.version})`);
    await sleep(100);
  }
}

/** Types `text` one character per change at the end of the document. */
function type(c: CodespaceClient, text: string): void {
  for (const ch of text) c.applyLocal([{ from: c.text.length, to: c.text.length, insert: ch }]);
}

for (const how of ["SIGTERM", "SIGKILL after a periodic write"] as const) {
  test(`documents survive a restart (${how}); a connected client keeps its unsent edits`, { timeout: 90_000 }, async () => {
    const dir = await dataDir();
    const env = { DATA_DIR: dir, PORT: String(await freePort()) };
    let srv = await start(env);
    const token = `tmp-${randomUUID()}`;
    const c = await CodespaceClient.connect(srv.url, token, { transports: ["websocket"] });
    clients.push(c);
    const resets: ResetEvent[] = [];
    c.on("reset", (r) => resets.push(r));
    type(c, "hello world");
    await c.whenSynced();
    const { epoch, version } = c;
    assert.ok(version >= 1);

    if (how === "SIGTERM") {
      assert.deepEqual(await srv.stop("SIGTERM"), { code: 0, signal: null });
    } else {
      await writtenAt(dir, token, version);
      await srv.kill();
    }
    await new Promise<void>((resolve) => (c.status === "disconnected" ? resolve() : c.once("status", () => resolve())));
    type(c, " and more"); // typed while the server is down: unsent
    assert.ok(c.pending >= 1, "the offline edits are pending");

    srv = await start(env);
    await c.waitForVersion(version + 1);
    await c.whenSynced();
    assert.equal(c.epoch, epoch, "the codespace kept its epoch");
    assert.equal(c.text, "hello world and more");
    assert.deepEqual(resets, [], "no reset: nothing was reloaded or dropped");

    // a fresh client sees the same document and version from the restored store
    const d = await CodespaceClient.connect(srv.url, token);
    clients.push(d);
    assert.equal(d.text, "hello world and more");
    assert.equal(d.epoch, epoch);
    assert.equal(d.version, c.version);
    c.close();
    d.close();
    await srv.stop();
  });
}

test("saved codespaces whose TTL ran out are dropped at start (file removed); the others come back with their TTL", { timeout: 60_000 }, async () => {
  const dir = await dataDir();
  const live = `tmp-${randomUUID()}`;
  const dead = `tmp-${randomUUID()}`;
  const rec = (codespace: string, expiresAt: number) => ({
    codespace, epoch: `epoch-${codespace}`, version: 1, code: "saved", history: [{ clientID: "x", changes: [{ from: 0, to: 0, insert: "saved" }] }], expiresAt,
  });
  await writeFile(fileOf(dir, live), JSON.stringify(rec(live, Date.now() + 3_600_000)));
  await writeFile(fileOf(dir, dead), JSON.stringify(rec(dead, Date.now() - 1000)));
  await writeFile(join(dir, "garbage.json"), "{ not json");

  const srv = await start({ DATA_DIR: dir });
  assert.match(srv.output(), /"restored":1,"expired":1/);
  assert.match(srv.output(), /skipped an unreadable file/);
  const files = await readdir(dir);
  assert.ok(files.includes(`${createHash("sha256").update(live).digest("hex")}.json`));
  assert.ok(!files.includes(`${createHash("sha256").update(dead).digest("hex")}.json`), "the expired codespace's file is removed");

  const a = await CodespaceClient.connect(srv.url, live);
  const b = await CodespaceClient.connect(srv.url, dead);
  clients.push(a, b);
  assert.deepEqual([a.text, a.version, a.epoch], ["saved", 1, `epoch-${live}`]);
  assert.equal(b.text, "");
  assert.equal(b.version, 0);
  assert.notEqual(b.epoch, `epoch-${dead}`, "an expired codespace opens as a new one");
  a.close();
  b.close();
  await srv.stop();
});

test("a second server on the same DATA_DIR is refused with one line (its acknowledged edits would be overwritten)", { timeout: 60_000 }, async () => {
  const dir = await dataDir();
  await start({ DATA_DIR: dir });
  const { spawn } = await import("node:child_process");
  const { SERVER_MAIN, REPO_ROOT } = await import("./helpers/server-process.js");
  const child = spawn(process.execPath, [SERVER_MAIN], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, PORT: "0", HOST: "127.0.0.1", DATA_DIR: dir, LOG_LEVEL: "info" },
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  assert.equal(code, 1);
  const lines = stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /DATA_DIR .* is in use by another running server/);
});
