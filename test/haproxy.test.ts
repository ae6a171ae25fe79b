/**
 * Several hosts behind the real HAProxy (Debian's `haproxy`), with a config derived from the
 * repository's haproxy.cfg (test/helpers/haproxy.ts: only the bind and server addresses, and for one
 * case the client/server timeouts, are rewritten), two real server processes sharing a real Redis.
 * Also validates docker-compose.yml with Debian's `docker-compose` and its agreement with haproxy.cfg.
 */
import type { TestContext } from "node:test";
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Redis } from "ioredis";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { configuredServers, HAPROXY_CFG, startHaproxy, type HaproxyHandle } from "./helpers/haproxy.js";
import { io } from "socket.io-client";
import { connectSocket, emitAck } from "./helpers/socket.js";
import {
  assertConverged,
  closeAll,
  connectEditor,
  editAll,
  streamEdits,
  upgradedOrNow,
  withTimeout,
  type Editor,
  type Mix,
} from "./helpers/editors.js";

const run = promisify(execFile);

let redis: RedisServerHandle;
let rc: Redis;

before(async () => {
  redis = await startRedis();
  rc = redis.client();
});

after(async () => {
  await redis?.stop();
});

function startHost(): Promise<ServerProcess> {
  return startServerProcess({ REDIS_URL: redis.url, SHUTDOWN_TIMEOUT_MS: "5000", LOG_LEVEL: "info" });
}

/** Two hosts and an haproxy in front of them, for one test (stopped after it: nothing carries over). */
async function startBackend(t: TestContext, timeouts?: Record<string, string>): Promise<{ hosts: ServerProcess[]; lb: HaproxyHandle }> {
  const hosts = await Promise.all([startHost(), startHost()]);
  t.after(() => Promise.all(hosts.map((h) => h.kill())));
  const lb = await startHaproxy({ servers: hosts.map((h) => `127.0.0.1:${h.port}`), timeouts });
  t.after(() => lb.stop());
  return { hosts, lb };
}

/** Indexes of the `hosts` that logged a "socket connected" for one of `ids`. */
function hostsServing(hosts: ServerProcess[], ids: string[]): Set<number> {
  const serving = new Set<number>();
  for (const [i, h] of hosts.entries()) {
    for (const id of ids) if (h.output().includes(`"socket":"${id}"`)) serving.add(i);
  }
  return serving;
}

describe("docker-compose.yml and haproxy.cfg", () => {
  test("docker-compose config -q accepts the file; haproxy's backend servers are services of it; redis has keyspace notifications", async () => {
    const compose = join(REPO_ROOT, "docker-compose.yml");
    await run("docker-compose", ["-f", compose, "config", "-q"], { cwd: REPO_ROOT });
    const { stdout } = await run("docker-compose", ["-f", compose, "config", "--services"], { cwd: REPO_ROOT });
    const services = stdout.split("\n").map((s) => s.trim()).filter(Boolean);
    for (const s of ["redis", "haproxy"]) assert.ok(services.includes(s), `service ${s} missing: ${services.join(", ")}`);
    const servers = configuredServers();
    assert.ok(servers.length >= 2, "haproxy.cfg should balance at least two hosts");
    for (const { name, address } of servers) {
      const host = address.split(":")[0]!;
      assert.ok(services.includes(host), `haproxy server ${name} points at ${host}, which is not a service of docker-compose.yml`);
      assert.equal(address.split(":")[1], "8888", `${name}: the servers listen on 8888`);
    }
    const { stdout: resolved } = await run("docker-compose", ["-f", compose, "config"], { cwd: REPO_ROOT });
    assert.match(resolved, /notify-keyspace-events[\s\S]{0,40}Kgx/, "redis must enable keyspace notifications (Kgx)");
    assert.match(resolved, /dist\/cluster\/main\.js/, "server hosts run in cluster mode");
    assert.match(resolved, /REDIS_URL: redis:\/\/redis:6379/);
    assert.match(resolved, /haproxy\.cfg/, "haproxy mounts haproxy.cfg");
    const cfg = readFileSync(HAPROXY_CFG, "utf8");
    assert.match(cfg, /^\s*bind\s+:8888\b/m);
    assert.match(cfg, /^\s*timeout\s+tunnel\s+\S+/m);
    assert.match(cfg, /^\s*cookie\s+\S+\s+insert\b/m);
    assert.match(cfg, /uri \/readyz/);
  });
});

describe("two hosts behind haproxy", () => {
  test("polling, websocket and upgrading clients in one codespace converge across both hosts; no 400, every upgrade succeeds", { timeout: 120_000 }, async (t) => {
    const { hosts, lb } = await startBackend(t);
    const token = `tmp-${randomUUID()}`;
    const mixes: Mix[] = ["polling", "websocket", "upgrade"];
    const editors = await Promise.all(Array.from({ length: 24 }, (_, i) => connectEditor(lb.url, token, `h${i}`, mixes[i % 3]!)));
    try {
      await editAll(editors, 3);
      await withTimeout(Promise.all(editors.filter((e) => e.mix !== "polling").map(upgradedOrNow)), 10_000, "upgrades");
      await assertConverged(rc, token, editors);
      for (const ed of editors) {
        assert.equal(ed.disconnects, 0, `${ed.name} (${ed.mix}) was disconnected`);
        assert.deepEqual(ed.connectErrors, [], ed.name);
        assert.equal(ed.upgradeErrors, 0, `${ed.name}: failed upgrade`);
      }
      for (const mix of mixes) {
        const ids = editors.filter((e) => e.mix === mix).map((e) => e.client.id);
        assert.equal(hostsServing(hosts, ids).size, 2, `${mix} clients should be spread over both hosts`);
      }
      const statuses = lb.statuses();
      assert.ok(statuses.length > 0, `no request logged by haproxy:\n${lb.output().slice(-2000)}`);
      assert.deepEqual(statuses.filter((s) => s >= 400), [], "haproxy logged error statuses");
      for (const h of hosts) assert.doesNotMatch(h.output(), /engine connection error/);
    } finally {
      closeAll(editors);
    }
  });

  test("an idle websocket survives past haproxy's client/server timeouts (timeout tunnel)", async (t) => {
    // The shipped config with `timeout client`/`timeout server` cut to 1 s: only `timeout tunnel`
    // (1h) can keep an upgraded connection open that long without traffic (Socket.IO pings every
    // 25 s). A polling socket beside it shows the short timeouts are in force: its long-poll GET,
    // held by the server for up to 25 s, is cut by haproxy and the socket drops.
    const { lb } = await startBackend(t, { client: "1s", server: "1s" });
    const token = `tmp-${randomUUID()}`;
    const ws = await connectSocket(lb.url, token, ["websocket"]);
    const polling = io(`${lb.url}/codespace`, { forceNew: true, reconnection: false, transports: ["polling"], auth: { token } });
    try {
      let wsDisconnected = "";
      ws.socket.on("disconnect", (reason) => (wsDisconnected = reason));
      const pollingDropped = await withTimeout(
        new Promise<string>((resolve) => {
          polling.on("connect_error", (err) => resolve(`connect_error: ${err.message}`));
          polling.on("disconnect", (reason) => resolve(`disconnect: ${reason}`));
        }),
        10_000,
        "the polling socket being cut by the 1 s timeouts",
      );
      assert.match(pollingDropped, /^connect_error: |^disconnect: transport (error|close)/);
      // Idle for three times the client timeout in all: nothing is expected to happen to the websocket.
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(wsDisconnected, "", "the idle websocket was closed");
      assert.equal(ws.socket.connected, true);
      const ack = await emitAck(ws.socket, "pull", { epoch: ws.connected.epoch, version: 0 });
      assert.equal(ack.ok, true);
    } finally {
      ws.socket.close();
      polling.close();
    }
  });

  test("failover: one host is killed during editing; its clients reconnect through haproxy to the other, catch up, resubmit; every acknowledged update is stored exactly once", { timeout: 120_000 }, async (t) => {
    const { hosts, lb } = await startBackend(t);
    const tokens = [`tmp-${randomUUID()}`, `tmp-${randomUUID()}`];
    const mixes: Mix[] = ["polling", "websocket", "upgrade"];
    const editors: Editor[] = await Promise.all(
      Array.from({ length: 24 }, (_, i) => connectEditor(lb.url, tokens[i % 2]!, `f${i}`, mixes[i % 3]!)),
    );
    try {
      const victim = hosts[0]!;
      const onVictim = editors.filter((e) => victim.output().includes(`"socket":"${e.client.id}"`));
      assert.ok(onVictim.length > 0, "some clients should be on the host to kill");
      const edits = streamEdits(editors, 30_000);
      await withTimeout(edits.reach(60), 30_000, "60 confirmed updates before the kill");
      await victim.kill();
      const atKill = edits.confirmed();
      await withTimeout(edits.reach(atKill + 80), 45_000, "80 more confirmed updates after the kill");
      await edits.stop(45_000);
      for (const token of tokens) await assertConverged(rc, token, editors.filter((e) => e.client.codespace === token));
      for (const ed of onVictim) {
        assert.ok(ed.disconnects > 0, `${ed.name} was on the killed host`);
        assert.equal(ed.client.status, "connected", `${ed.name} reconnected`);
        assert.ok(hosts[1]!.output().includes(`"socket":"${ed.client.id}"`), `${ed.name} now on the surviving host`);
      }
    } finally {
      closeAll(editors);
    }
  });
});
