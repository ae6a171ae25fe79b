/**
 * Redis resilience with real processes: two server hosts (no proxy) sharing a real redis-server
 * (AOF with appendfsync always, so a restart keeps what was acknowledged, as in docker-compose.yml).
 * While Redis is down: insert_value answers store_unavailable at once, /readyz is 503. After it is
 * back (restart, or connections dropped by CLIENT KILL): the store, the adapter's subscriptions
 * (cross-host broadcasts) and the keyspace subscription (expiry) recover by themselves; clients keep
 * editing; nothing acknowledged is lost; no process crashes. Also /readyz during shutdown.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, emitAck, nextEvent, type ClientSocket } from "./helpers/socket.js";
import { assertConverged, closeAll, connectEditor, streamEdits, withTimeout, type Editor, type Mix } from "./helpers/editors.js";

let redis: RedisServerHandle;
let rc: Redis;
let hosts: ServerProcess[] = [];
const crashed: string[] = [];

before(async () => {
  redis = await startRedis({ args: ["--notify-keyspace-events", "", "--appendonly", "yes", "--appendfsync", "always"] });
  rc = redis.client();
  hosts = await Promise.all([0, 1].map(() => startServerProcess({ REDIS_URL: redis.url, LOG_LEVEL: "info" })));
  for (const [i, h] of hosts.entries()) void h.exited.then((s) => crashed.push(`host ${i} exited ${JSON.stringify(s)}\n${h.output().slice(-2000)}`));
});

after(async () => {
  await Promise.all(hosts.map((h) => h.kill()));
  await redis?.stop();
});

async function readyz(url: string): Promise<number> {
  return fetch(`${url}/readyz`).then((r) => r.status, () => 0);
}

/** Polls /readyz (every 50 ms, bounded) until it answers `status`. */
async function waitReadyz(url: string, status: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readyz(url)) !== status) {
    if (Date.now() > deadline) throw new Error(`${url}/readyz did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A raw socket on each host, in a fresh codespace. */
async function rawPair(): Promise<{ token: string; a: ClientSocket; b: ClientSocket; epoch: string }> {
  const token = `tmp-${randomUUID()}`;
  const a = await connectSocket(hosts[0]!.url, token, ["websocket"]);
  const b = await connectSocket(hosts[1]!.url, token, ["polling"]);
  return { token, a: a.socket, b: b.socket, epoch: a.connected.epoch };
}

/** Host 0 inserts; host 1's socket must receive the broadcast (through the Redis adapter). */
async function assertCrossHostBroadcast(p: { a: ClientSocket; b: ClientSocket; epoch: string }, text: string): Promise<void> {
  const pulled = await emitAck(p.a, "pull", { epoch: p.epoch, version: 0 });
  assert.equal(pulled.ok, true);
  const version = (pulled as { version: number }).version;
  const received = nextEvent(p.b, "insert_value", 10_000);
  const ack = await emitAck(p.a, "insert_value", {
    epoch: p.epoch,
    version,
    updates: [{ clientID: `raw-${randomUUID()}`, changes: [{ from: 0, to: 0, insert: text }] }],
  }, 5000);
  assert.deepEqual(ack, { ok: true, version: version + 1 });
  const got = await received;
  assert.equal(got.version, version + 1);
  assert.deepEqual(got.changes, [{ from: 0, to: 0, insert: text }]);
}

/** DEL of the key reaches the sockets on both hosts as `expired` (keyspace notifications). */
async function assertExpiryDelivered(p: { token: string; a: ClientSocket; b: ClientSocket }): Promise<void> {
  const ea = nextEvent(p.a, "expired", 10_000);
  const eb = nextEvent(p.b, "expired", 10_000);
  assert.equal(await rc.del(p.token), 1);
  assert.deepEqual(await ea, { codespace: p.token });
  assert.deepEqual(await eb, { codespace: p.token });
}

describe("redis resilience", () => {
  test("Redis restart during editing: store_unavailable at once while down, /readyz 503; afterwards clients keep working, cross-host broadcasts and expiry resume, nothing acknowledged is lost", { timeout: 120_000 }, async () => {
    const token = `tmp-${randomUUID()}`;
    const mixes: Mix[] = ["polling", "websocket", "upgrade"];
    const editors: Editor[] = await Promise.all(
      Array.from({ length: 12 }, (_, i) => connectEditor(hosts[i % 2]!.url, token, `r${i}`, mixes[i % 3]!)),
    );
    const pair = await rawPair();
    try {
      const edits = streamEdits(editors, 45_000);
      await withTimeout(edits.reach(30), 30_000, "30 confirmed updates before the restart");

      // Redis goes down (SHUTDOWN: the AOF is complete), and stays down until restart().
      await rc.shutdown("NOSAVE").catch(() => {});
      for (const h of hosts) await waitReadyz(h.url, 503);
      const ack = await emitAck(pair.a, "insert_value", {
        epoch: pair.epoch,
        version: 0,
        updates: [{ clientID: "down", changes: [{ from: 0, to: 0, insert: "x" }] }],
      }, 3000);
      assert.equal(ack.ok, false);
      assert.equal(!ack.ok && ack.error.code, "store_unavailable");

      await redis.restart();
      for (const h of hosts) await waitReadyz(h.url, 200);
      const atRestart = edits.confirmed();
      await withTimeout(edits.reach(atRestart + 30), 30_000, "30 more confirmed updates after the restart");
      await edits.stop(45_000);
      await assertConverged(rc, token, editors);
      await assertCrossHostBroadcast(pair, "after-restart");
      await assertExpiryDelivered(pair);
      assert.deepEqual(crashed, []);
    } finally {
      closeAll(editors);
      pair.a.close();
      pair.b.close();
    }
  });

  test("connections dropped by Redis (CLIENT KILL): the store, the adapter and the keyspace subscription recover", async () => {
    const pair = await rawPair();
    try {
      await assertCrossHostBroadcast(pair, "before");
      // Both hosts' subscriber connections (adapter, keyspace) and command connections are dropped.
      const pubsub = Number(await rc.client("KILL", "TYPE", "pubsub"));
      const normal = Number(await rc.client("KILL", "TYPE", "normal", "SKIPME", "yes"));
      assert.ok(pubsub >= 2 && normal >= 2, `killed ${pubsub} pubsub and ${normal} normal connections`);
      for (const h of hosts) await waitReadyz(h.url, 200);
      // The store's command connection may still be reconnecting after /readyz turned 200 on one
      // check: retry the first insert on store_unavailable (bounded).
      for (let i = 0; ; i++) {
        try {
          await assertCrossHostBroadcast(pair, `after-${i}`);
          break;
        } catch (err) {
          if (i >= 20) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await assertExpiryDelivered(pair);
      assert.deepEqual(crashed, []);
    } finally {
      pair.a.close();
      pair.b.close();
    }
  });

  test("a graceful shutdown closes every socket's transport, so plain socket.io clients reconnect by themselves", async () => {
    const { server: srv, url } = await startInProcessServer({ REDIS_URL: redis.url });
    const token = `tmp-${randomUUID()}`;
    const sockets: ClientSocket[] = [];
    try {
      for (let i = 0; i < 16; i++) sockets.push((await connectSocket(url, token, i % 2 ? ["websocket"] : ["polling"])).socket);
      // socket.io-client reconnects after "transport close", never after "io server disconnect"
      const reasons = sockets.map((s) => new Promise<string>((resolve) => s.once("disconnect", (reason) => resolve(reason))));
      await srv.close();
      const got = await withTimeout(Promise.all(reasons), 10_000, "every socket disconnected");
      assert.deepEqual(got.filter((r) => r === "io server disconnect"), [], `reasons: ${got.join(", ")}`);
    } finally {
      for (const s of sockets) s.close();
    }
  });

  test("/readyz: 200 when connected, 503 as soon as a graceful shutdown begins", async () => {
    const { server: srv, url } = await startInProcessServer({ REDIS_URL: redis.url });
    assert.equal(await readyz(url), 200);
    assert.equal(srv.isReady(), true);
    const closing = srv.close();
    assert.equal(srv.isReady(), false);
    await closing;
  });
});
