/**
 * One host, node:cluster (cluster/): a primary with 2 workers behind @socket.io/sticky, a real
 * redis-server, real client processes' worth of CodespaceClients (polling-only, websocket-only,
 * polling upgraded to websocket). Also: REDIS_URL required, a worker's graceful SIGTERM while
 * updates stream, the primary's SIGTERM.
 */
import type { TestContext } from "node:test";
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { freePort, startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import {
  assertConverged,
  closeAll,
  connectEditor,
  editAll,
  streamEdits,
  upgradedOrNow,
  waitForOutput,
  withTimeout,
  type Editor,
  type Mix,
} from "./helpers/editors.js";

const CLUSTER_MAIN = join(REPO_ROOT, "dist", "cluster", "main.js");
const SHUTDOWN_TIMEOUT_MS = 5000;

let redis: RedisServerHandle;
let rc: Redis;

before(async () => {
  redis = await startRedis();
  rc = redis.client();
});

after(async () => {
  await redis?.stop();
});

/** A primary with 2 workers of its own (each test that needs one starts it: nothing carries over). */
async function startCluster(t: TestContext): Promise<ServerProcess> {
  const srv = await startServerProcess(
    { REDIS_URL: redis.url, WORKERS: "2", SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), LOG_LEVEL: "info" },
    { script: CLUSTER_MAIN, timeoutMs: 30_000 },
  );
  t.after(() => srv.kill());
  return srv; // the primary logs "listening" once both workers are ready
}

/** Worker pids announced by the primary ("worker ready" with a workerId), in order. */
function workerPids(srv: ServerProcess): number[] {
  return [...srv.output().matchAll(/\{[^\n]*"workerPid":(\d+),"workerId":\d+,"msg":"worker ready"/g)].map((m) => Number(m[1]));
}

/** Pid of the worker that logged the connection of socket `id`. */
function pidServing(srv: ServerProcess, id: string): number {
  const m = srv.output().match(new RegExp(`"pid":(\\d+),[^\\n]*"socket":"${id.replace(/[^\w-]/g, ".")}"[^\\n]*"msg":"socket connected"`));
  assert.ok(m, `no "socket connected" line for ${id}`);
  return Number(m[1]);
}

/** Runs the cluster entry with `env` (outside the test runner's context) until it exits (bounded: 10 s). */
async function runClusterToExit(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv = { ...env };
  delete childEnv.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [CLUSTER_MAIN], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  const code = await withTimeout(new Promise<number | null>((r) => child.on("close", (c) => r(c))), 10_000, "exit");
  return { code, stdout, stderr };
}

describe("cluster", () => {
  test("without REDIS_URL it exits 1 at start with one clear line", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, WORKERS: "2", PORT: "0" };
    delete env.REDIS_URL;
    const { code, stdout, stderr } = await runClusterToExit(env);
    assert.equal(code, 1);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
    assert.match(lines[0]!, /REDIS_URL is required in cluster mode/);
    assert.equal(stdout, "", "nothing should start (no workers, no listening)");
  });

  test("Redis not there at start: the primary answers /healthz 200 and /readyz 503 at once; once Redis and a worker are up it serves", { timeout: 60_000 }, async (t) => {
    const [port, redisPort] = [await freePort(), await freePort()];
    // spawned directly: startServerProcess waits for "listening", which the primary logs only once
    // its workers are ready
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: `redis://127.0.0.1:${redisPort}`, WORKERS: "1", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [CLUSTER_MAIN], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    const closed = new Promise<void>((r) => child.on("close", () => r()));
    t.after(async () => {
      child.kill("SIGKILL");
      await closed;
    });
    const srv = { output: (): string => out };
    const base = `http://127.0.0.1:${port}`;
    // the port is bound before the workers start; wait (bounded) until it accepts
    let healthz: Response | undefined;
    for (let i = 0; i < 200 && !healthz; i++) healthz = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).catch(() => new Promise<undefined>((r) => setTimeout(r, 50)));
    assert.equal(healthz?.status, 200, "/healthz answers while no worker is ready");
    const readyz = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
    assert.equal(readyz.status, 503);
    assert.match(await readyz.text(), /no worker is ready yet/);
    const handshake = await fetch(`${base}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(2000) });
    assert.equal(handshake.status, 503, "a handshake gets an answer (clients retry), not a hanging connection");
    assert.doesNotMatch(srv.output(), /"msg":"listening"/);

    const late = await startRedis({ port: redisPort });
    t.after(() => late.stop());
    await waitForOutput(srv.output, /"msg":"listening"/, 30_000);
    assert.equal((await fetch(`${base}/readyz`)).status, 200, "a worker answers now");
  });

  test("with PORT taken it exits 1 with one clear line, before starting any worker", { timeout: 30_000 }, async () => {
    const taken = createNetServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as AddressInfo).port;
    try {
      const { code, stdout, stderr } = await runClusterToExit({ ...process.env, REDIS_URL: redis.url, WORKERS: "2", PORT: String(port), HOST: "127.0.0.1" });
      assert.equal(code, 1);
      assert.equal(stderr, `codespace-cluster: cannot listen on 127.0.0.1:${port} (PORT): address already in use (EADDRINUSE)\n`);
      assert.equal(stdout, "", "no worker should start");
    } finally {
      taken.close();
    }
  });

  test("2 workers: 200 polling-only + 200 websocket-only (+ 40 upgrading) clients edit and converge; no 400, every upgrade succeeds", { timeout: 180_000 }, async (t) => {
    const srv = await startCluster(t);
    assert.equal(workerPids(srv).length, 2);
    const codespaces = Array.from({ length: 8 }, () => `tmp-${randomUUID()}`);
    const plan: { mix: Mix; n: number }[] = [
      { mix: "polling", n: 200 },
      { mix: "websocket", n: 200 },
      { mix: "upgrade", n: 40 },
    ];
    const specs: { name: string; mix: Mix; token: string }[] = [];
    for (const { mix, n } of plan) for (let i = 0; i < n; i++) specs.push({ name: `${mix[0]}${i}`, mix, token: codespaces[specs.length % codespaces.length]! });
    const editors: Editor[] = [];
    try {
      const results = await Promise.allSettled(specs.map((s) => connectEditor(srv.url, s.token, s.name, s.mix, { timeoutMs: 30_000 })));
      for (const r of results) if (r.status === "fulfilled") editors.push(r.value);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.equal(failed.length, 0, `connect failures: ${failed.slice(0, 3).map((f) => String(f.reason)).join("; ")}`);

      await editAll(editors, 2, 45_000);
      await withTimeout(Promise.all(editors.filter((e) => e.mix !== "polling").map(upgradedOrNow)), 10_000, "upgrades");
      for (const token of codespaces) {
        await assertConverged(rc, token, editors.filter((e) => e.client.codespace === token));
      }

      for (const ed of editors) {
        assert.deepEqual(ed.connectErrors, [], `${ed.name}: connect errors`);
        assert.equal(ed.disconnects, 0, `${ed.name} (${ed.mix}) was disconnected`);
        assert.equal(ed.upgradeErrors, 0, `${ed.name}: failed upgrade`);
        assert.equal(ed.client.socket.io.engine.transport.name, ed.mix === "polling" ? "polling" : "websocket", ed.name);
      }
      // Server side: no "Session ID unknown" / bad request / failed upgrade on any worker.
      assert.doesNotMatch(srv.output(), /engine connection error/);
      // Both workers served sockets.
      const servingPids = new Set([...srv.output().matchAll(/"pid":(\d+),[^\n]*"msg":"socket connected"/g)].map((m) => m[1]));
      assert.equal(servingPids.size, 2, "both workers should have sockets");
    } finally {
      closeAll(editors);
    }
  });

  test("SIGTERM of one worker while updates stream: every acknowledged update is in Redis, it exits in time, it is replaced", { timeout: 120_000 }, async (t) => {
    const srv = await startCluster(t);
    const initialWorkers = workerPids(srv);
    assert.equal(initialWorkers.length, 2);
    const codespaces = [`tmp-${randomUUID()}`, `tmp-${randomUUID()}`];
    const mixes: Mix[] = ["polling", "websocket", "upgrade"];
    const editors = await Promise.all(
      Array.from({ length: 24 }, (_, i) => connectEditor(srv.url, codespaces[i % 2]!, `s${i}`, mixes[i % 3]!)),
    );
    try {
      // The victim: the worker serving the first editor (so some of these clients are on it).
      const victim = pidServing(srv, editors[0]!.client.id);
      assert.ok(initialWorkers.includes(victim), `socket ${editors[0]!.client.id} is on pid ${victim}, not a worker`);
      const edits = streamEdits(editors, 30_000);
      await withTimeout(edits.reach(60), 30_000, "60 confirmed updates before the SIGTERM");

      process.kill(victim, "SIGTERM");
      const exitLine = await waitForOutput(
        srv.output,
        new RegExp(`"workerPid":${victim},"code":(\\w+),"signal":(\\w+|null)[^\\n]*"msg":"worker exited; replacing it"`),
        SHUTDOWN_TIMEOUT_MS + 5000,
      );
      assert.equal(exitLine[1], "0", `the worker should exit 0 (graceful, within SHUTDOWN_TIMEOUT_MS), got ${exitLine[0]}`);
      const after = edits.confirmed();
      await withTimeout(edits.reach(after + 60), 30_000, "60 more confirmed updates after the SIGTERM");
      await edits.stop(30_000);
      for (const token of codespaces) await assertConverged(rc, token, editors.filter((e) => e.client.codespace === token));
      // The victim's clients were disconnected and came back (to the other worker or the replacement).
      assert.ok(editors.some((e) => e.disconnects > 0), "some clients should have been moved off the stopped worker");
      // A replacement (a worker pid not seen before) announced itself ready.
      await waitForOutput(srv.output, /("msg":"worker ready"[\s\S]*?){3}/, 15_000);
      const replacement = workerPids(srv).filter((p) => !initialWorkers.includes(p));
      assert.equal(replacement.length, 1, `one replacement worker, got ${JSON.stringify(workerPids(srv))}`);
      assert.match(srv.output(), new RegExp(`"pid":${victim},[^\\n]*"msg":"worker stopped"`));
    } finally {
      closeAll(editors);
    }
  });

  test("SIGKILL of the primary: each worker says why it exits, and exits", { timeout: 60_000 }, async (t) => {
    const srv = await startCluster(t);
    const workers = workerPids(srv);
    assert.equal(workers.length, 2);
    process.kill(srv.pid, "SIGKILL");
    // the workers share the primary's output pipe: their lines still arrive
    await waitForOutput(srv.output, /("msg":"the cluster primary is gone[\s\S]*?){2}/, 15_000);
    for (const pid of workers) assert.match(srv.output(), new RegExp(`"pid":${pid},[^\\n]*"msg":"the cluster primary is gone`));
    await srv.exited;
    for (const pid of workers) {
      let alive = true;
      for (let i = 0; i < 100 && alive; i++) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 50));
        } catch {
          alive = false;
        }
      }
      assert.equal(alive, false, `worker ${pid} exited`);
    }
  });

  test("SIGTERM of the primary: the workers shut down gracefully, the primary exits 0 after them", { timeout: 60_000 }, async (t) => {
    const srv = await startCluster(t);
    const { url } = srv;
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    const status = await srv.stop("SIGTERM", SHUTDOWN_TIMEOUT_MS + 5000);
    assert.deepEqual(status, { code: 0, signal: null }, srv.output().slice(-3000));
    const tail = srv.output().slice(srv.output().lastIndexOf('"msg":"shutting down"'));
    assert.equal([...tail.matchAll(/"msg":"worker exited"/g)].length, 2, "both workers exit before the primary");
    assert.match(tail, /"msg":"stopped"/);
  });
});
