/**
 * Auth edge cases (docs/operations.md, "Auth"): a client that goes away while its token check is in
 * flight is never joined and nothing is written for it; the optional AUTH_CACHE_MS cache of
 * successful checks; tokens never reach the logs. (A site API that stalls after one byte is cut at
 * API_TIMEOUT_MS: handshake.test.ts.) Real redis-server, stub site API, in-process servers and one
 * server child process whose output is captured.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { io } from "socket.io-client";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { startServerProcess } from "./helpers/server-process.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";

type Srv = CodespaceServer;

let redis: RedisServerHandle;
let stub: StubApi;

before(async () => {
  [redis, stub] = await Promise.all([startRedis(), startStubApi()]);
});
after(async () => {
  await stub?.close();
  await redis?.stop();
});

/** Resolves once `cond()` holds, checking after every macrotask turn (bounded by `timeoutMs`). */
async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function metric(srv: Srv, name: string, labels: Record<string, string>): Promise<number> {
  const m = await srv.metrics.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

async function server(extra: Record<string, string> = {}): Promise<Srv> {
  return (await startInProcessServer({ REDIS_URL: redis.url, API_BASE_URL: stub.baseUrl, API_TIMEOUT_MS: "5000", ...extra })).server;
}

describe("client gone during the token check", () => {
  for (const transport of ["websocket", "polling"] as const) {
    test(`over ${transport}: never joined, no connected, no codespace, nothing in Redis; the API call is abandoned`, async (t) => {
      const srv = await server(); // its own: the counts and the registry below are this test's only
      t.after(() => srv.close());
      const uuid = randomUUID();
      const token = `slow-${randomUUID()}`;
      stub.setToken(token, { delayMs: 3000, status: 200, body: { uuid, mode: "edit" } });
      const from = stub.calls.length;
      const socket = io(`http://127.0.0.1:${srv.port}/codespace`, { forceNew: true, reconnection: false, transports: [transport], auth: { token } });
      let connected = false;
      socket.on("connected", () => (connected = true));
      await until(() => stub.calls.slice(from).some((c) => c.includes(token)), "the API call");
      socket.close();
      await until(async () => (await metric(srv, "codespace_auth_checks_total", { outcome: "aborted" })) >= 1, "the aborted check");
      // give the namespace its remaining ticks to (wrongly) join
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.equal(connected, false);
      assert.equal(srv.registry.size, 0);
      assert.equal(srv.io.of("/codespace").sockets.size, 0);
      assert.equal(srv.io.of("/codespace").adapter.rooms.has(`codespace:${uuid}`), false);
      assert.equal(await redis.client().exists(uuid), 0);
      assert.equal(await metric(srv, "codespace_auth_checks_total", { outcome: "ok" }), 0);
    });
  }
});

describe("AUTH_CACHE_MS", () => {
  test("default off: every handshake asks the API", async () => {
    const srv = await server();
    try {
      const token = `nc-${randomUUID()}`;
      stub.setToken(token, { status: 200, body: { uuid: randomUUID(), mode: "edit" } });
      const from = stub.calls.length;
      for (let i = 0; i < 3; i++) (await connectSocket(`http://127.0.0.1:${srv.port}`, token)).socket.close();
      assert.equal(stub.calls.slice(from).filter((c) => c.includes(token)).length, 3);
    } finally {
      await srv.close();
    }
  });

  test("set: a successful check is reused (same codespace and mode); refusals are not cached", async () => {
    const srv = await server({ AUTH_CACHE_MS: "600000" });
    try {
      const url = `http://127.0.0.1:${srv.port}`;
      const token = `c-${randomUUID()}`;
      const uuid = randomUUID();
      stub.setToken(token, { status: 200, body: { uuid, mode: "view_only" } });
      const bad = `bad-${randomUUID()}`;
      stub.setToken(bad, { status: 404, body: {} });
      const from = stub.calls.length;
      for (let i = 0; i < 3; i++) {
        const { socket, connected } = await connectSocket(url, token);
        socket.close();
        assert.equal(connected.codespace, uuid);
        assert.equal(connected.mode, "view_only");
      }
      for (let i = 0; i < 2; i++) assert.equal((await expectConnectError(url, bad)).data?.code, "invalid_token");
      const calls = stub.calls.slice(from);
      assert.equal(calls.filter((c) => c.includes(token)).length, 1);
      assert.equal(calls.filter((c) => c.includes(bad)).length, 2);
      assert.equal(await metric(srv, "codespace_auth_checks_total", { outcome: "cached" }), 2);
    } finally {
      await srv.close();
    }
  });
});

test("tokens never appear in the server's log output (trace level, every handshake outcome)", async () => {
  const secret = () => `s3cr3t${randomUUID().replaceAll("-", "")}`;
  const tokens = { ok: secret(), notFound: secret(), error500: secret(), malformed: secret(), stalled: secret(), destroyed: secret(), gone: secret() };
  stub.setToken(tokens.ok, { status: 200, body: { uuid: randomUUID(), mode: "edit" } });
  stub.setToken(tokens.notFound, { status: 404, body: { detail: "no" } });
  stub.setToken(tokens.error500, { status: 500, body: {} });
  stub.setToken(tokens.malformed, { status: 200, rawBody: "{nope" });
  stub.setToken(tokens.stalled, { stallAfterFirstByte: true, status: 200, body: { uuid: "x", mode: "edit" } });
  stub.setToken(tokens.destroyed, { destroy: true });
  stub.setToken(tokens.gone, { delayMs: 3000, status: 200, body: { uuid: randomUUID(), mode: "edit" } });
  const proc = await startServerProcess({ LOG_LEVEL: "trace", REDIS_URL: redis.url, API_BASE_URL: stub.baseUrl, API_TIMEOUT_MS: "300", AUTH_CACHE_MS: "1000" });
  try {
    const { socket } = await connectSocket(proc.url, tokens.ok, ["polling"]);
    socket.close();
    for (const t of [tokens.notFound, tokens.error500, tokens.malformed, tokens.stalled, tokens.destroyed]) await expectConnectError(proc.url, t);
    const from = stub.calls.length;
    const leaving = io(`${proc.url}/codespace`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: tokens.gone } });
    await until(() => stub.calls.slice(from).length > 0, "the API call");
    leaving.close();
    await until(() => /handshake refused.*"clientGone":true|"clientGone":true.*handshake refused/.test(proc.output()), "the abandoned handshake's log line");
  } finally {
    await proc.stop();
  }
  const out = proc.output();
  assert.match(out, /handshake refused/);
  assert.match(out, /socket connected/);
  for (const [kind, token] of Object.entries(tokens)) {
    assert.equal(out.includes(token), false, `the ${kind} token appears in the log`);
    assert.equal(out.includes(encodeURIComponent(token).slice(0, 20)), false, `a part of the ${kind} token appears in the log`);
  }
});
