/**
 * Cluster routing under a burst on a busy machine (issue 12, point 7): a primary with 2 workers,
 * repeated bursts of 300 concurrent handshakes (100 polling-only, 100 websocket-only, 100 polling
 * upgraded to websocket) while a child process burns a core. Every socket must reach `connected`
 * with no `connect_error`, and no worker may log `Session ID unknown` (a polling request or an
 * upgrade handed to a worker that does not hold its session).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, type ClientSocket, type Transport } from "./helpers/socket.js";

const CLUSTER_MAIN = join(REPO_ROOT, "dist", "cluster", "main.js");
const BURSTS = 3;
const PER_BURST = 300;

let redis: RedisServerHandle;
let srv: ServerProcess;
let burner: ChildProcess;

before(async () => {
  redis = await startRedis();
  srv = await startServerProcess({ REDIS_URL: redis.url, WORKERS: "2", LOG_LEVEL: "info" }, { script: CLUSTER_MAIN, timeoutMs: 30_000 });
  // keeps the machine busy: the primary and the workers compete with it for the CPU
  burner = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
});

after(async () => {
  burner?.kill("SIGKILL");
  await srv?.kill();
  await redis?.stop();
});

const MIXES: readonly (readonly Transport[])[] = [["polling"], ["websocket"], ["polling", "websocket"]];

test(`${BURSTS} bursts of ${PER_BURST} mixed-transport handshakes on 2 busy workers: no connect error, no "Session ID unknown"`, { timeout: 55_000 }, async () => {
  let connected = 0;
  for (let burst = 0; burst < BURSTS; burst++) {
    // 10 codespaces of 30 sockets (far below MAX_CONNECTIONS_PER_CODESPACE whatever the balance)
    const tokens = Array.from({ length: 10 }, () => `tmp-${randomUUID()}`);
    const results = await Promise.allSettled(
      Array.from({ length: PER_BURST }, (_, i) =>
        connectSocket(srv.url, tokens[i % tokens.length]!, MIXES[i % MIXES.length]!, { timeoutMs: 15_000 }),
      ),
    );
    const sockets: ClientSocket[] = [];
    const errors: string[] = [];
    for (const r of results) {
      if (r.status === "fulfilled") sockets.push(r.value.socket);
      else errors.push(String((r.reason as Error).message));
    }
    for (const s of sockets) s.close();
    connected += sockets.length;
    assert.deepEqual(errors, [], `burst ${burst}: ${errors.length} connect errors`);
  }
  assert.equal(connected, BURSTS * PER_BURST);
  const out = srv.output();
  assert.doesNotMatch(out, /Session ID unknown/);
  assert.doesNotMatch(out, /engine connection error/);
  // both workers took part
  const pids = new Set([...out.matchAll(/"pid":(\d+),[^\n]*"msg":"socket connected"/g)].map((m) => m[1]));
  assert.equal(pids.size, 2, "both workers should have served sockets");
});
