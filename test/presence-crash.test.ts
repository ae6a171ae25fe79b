/**
 * Presence after a crash, with real processes: two server processes share a real redis-server; a
 * socket on each joins the same codespace; the second process is SIGKILLed (no graceful shutdown).
 * The socket on the survivor receives `user_left` for the dead process's socket, once, within the
 * documented bound (NODE_TTL_MS + HEARTBEAT_MS = 12 s; the test allows 30 s for a busy machine),
 * and a newcomer's presence list no longer has it.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, nextEvent, type ClientSocket } from "./helpers/socket.js";
import type { ConnectedPayload } from "../protocol/events.js";

let redis: RedisServerHandle;
let a: ServerProcess;
let b: ServerProcess;
const sockets: ClientSocket[] = [];

before(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([0, 1].map(() => startServerProcess({ REDIS_URL: redis.url, LOG_LEVEL: "info" })));
});
after(async () => {
  for (const s of sockets) s.close();
  await Promise.allSettled([a?.kill(), b?.kill()]);
  await redis?.stop();
});

test("SIGKILL of a server process: the others send user_left for its sockets", { timeout: 60_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const onA = await connectSocket(a.url, token, ["websocket"]);
  sockets.push(onA.socket);
  const joined = nextEvent(onA.socket, "user_joined", 10_000);
  const onB = await connectSocket(b.url, token, ["websocket"]);
  sockets.push(onB.socket);
  assert.equal((await joined).id, onB.connected.id);
  assert.deepEqual(onB.connected.users.map((u) => u.id).sort(), [onA.connected.id, onB.connected.id].sort());

  const left: string[] = [];
  onA.socket.on("user_left", ({ id }) => left.push(id));
  const gone = nextEvent(onA.socket, "user_left", 30_000);
  await b.kill();
  assert.deepEqual(await gone, { id: onB.connected.id });
  // logged just before the user_left is sent; the pipe may be read a moment after the socket
  for (let i = 0; i < 100 && !/stopped sending heartbeats/.test(a.output()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(a.output(), /stopped sending heartbeats/);
  assert.doesNotMatch(a.output(), /codespace expired/, "presence keys are not taken for codespaces");

  // a newcomer on the survivor does not list the dead process's socket
  const late = await connectSocket(a.url, token, ["polling"]);
  sockets.push(late.socket);
  assert.deepEqual(late.connected.users.map((u) => u.id).sort(), [onA.connected.id, late.connected.id].sort());
  assert.deepEqual(left, [onB.connected.id], "announced once");
});

test("a process's members hash has its TTL from the first join (a crash before its next heartbeat leaves nothing for good)", async () => {
  const c = await startServerProcess({ REDIS_URL: redis.url, KEY_PREFIX: "ttl:" });
  const r = redis.client();
  try {
    const s = await connectSocket(c.url, `tmp-${randomUUID()}`, ["websocket"]);
    sockets.push(s.socket);
    const [key] = await r.keys("ttl:presence:members:*");
    assert.ok(key, "the members hash exists");
    const ttl = await r.pttl(key);
    assert.ok(ttl > 0, `PTTL ${ttl}: the hash must expire`);
  } finally {
    r.disconnect();
    await c.kill();
  }
});

test("a process taken for crashed that comes back (it was stalled) is watched again: its later crash is announced", { timeout: 90_000 }, async () => {
  const [p, q] = await Promise.all([0, 1].map(() => startServerProcess({ REDIS_URL: redis.url, KEY_PREFIX: "stall:", LOG_LEVEL: "info" })));
  try {
    const token = `tmp-${randomUUID()}`;
    const onP = await connectSocket(p.url, token, ["websocket"]);
    sockets.push(onP.socket);
    const first = await connectSocket(q.url, token, ["websocket"]);
    sockets.push(first.socket);
    // q stalls past the heartbeat timeout: p takes it for crashed
    const declared = nextEvent(onP.socket, "user_left", 30_000);
    process.kill(q.pid, "SIGSTOP");
    try {
      assert.deepEqual(await declared, { id: first.connected.id });
    } finally {
      process.kill(q.pid, "SIGCONT");
    }
    // q is back (its socket reconnects or not: what matters is q's next crash); a new socket on q
    const second = await connectSocket(q.url, token, ["websocket"], { timeoutMs: 15_000 });
    sockets.push(second.socket);
    const gone = new Promise<void>((resolve) => {
      onP.socket.on("user_left", ({ id }) => {
        if (id === second.connected.id) resolve();
      });
    });
    await q.kill();
    await gone; // bounded by the test's timeout: before the fix q stayed "handled" and this never came
  } finally {
    await Promise.allSettled([p.kill(), q.kill()]);
  }
});

test("a process taken for crashed while only stalled closes its sockets' connections: they reconnect with new ids, announced again", { timeout: 90_000 }, async () => {
  const [p, q] = await Promise.all([0, 1].map(() => startServerProcess({ REDIS_URL: redis.url, KEY_PREFIX: "resume:", LOG_LEVEL: "info" })));
  try {
    const token = `tmp-${randomUUID()}`;
    const onP = await connectSocket(p.url, token, ["websocket"]);
    sockets.push(onP.socket);
    const onQ = await connectSocket(q.url, token, ["websocket"], { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    sockets.push(onQ.socket);
    const oldId = onQ.connected.id;
    const announcedAgain = new Promise<string>((resolve) =>
      onP.socket.on("user_joined", ({ id }) => {
        if (id !== oldId) resolve(id);
      }),
    );
    const dropped = nextEvent<string>(onQ.socket, "disconnect", 60_000);
    // q stalls past the heartbeat timeout: p announces its socket gone
    const declared = nextEvent(onP.socket, "user_left", 30_000);
    process.kill(q.pid, "SIGSTOP");
    try {
      assert.deepEqual(await declared, { id: oldId });
    } finally {
      process.kill(q.pid, "SIGCONT");
    }
    // q finds the mark at its next heartbeat and closes the connection (no DISCONNECT packet)
    assert.equal(await dropped, "transport close");
    const again = await nextEvent<ConnectedPayload>(onQ.socket, "connected", 30_000); // reconnects after 100-500 ms
    assert.notEqual(again.id, oldId, "a new socket id: the old one stays gone for every client");
    assert.equal(await announcedAgain, again.id, "the others hear of the reconnected socket");
    assert.deepEqual(again.users.map((u) => u.id).sort(), [onP.connected.id, again.id].sort());
    assert.match(q.output(), /took this one for crashed/);
  } finally {
    await Promise.allSettled([p.kill(), q.kill()]);
  }
});
