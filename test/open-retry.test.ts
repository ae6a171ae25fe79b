/**
 * Opening a codespace for a new socket survives a Redis that answers late (server/namespace/,
 * `openCodespace`): Redis is paused (CLIENT PAUSE, a real redis-server) for longer than the store's
 * 500 ms command timeout, so the first open fails with store_unavailable; the retry gets the
 * snapshot and the socket its `connected` event instead of `operation_error` + disconnect.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { connectSocket } from "./helpers/socket.js";

let redis: RedisServerHandle;
let srv: InProcessServer;

before(async () => {
  redis = await startRedis();
  srv = await startInProcessServer({ REDIS_URL: redis.url });
});

after(async () => {
  await srv?.close();
  await redis?.stop();
});

test("a socket joining while Redis answers later than the command timeout still gets connected", { timeout: 30_000 }, async () => {
  const token = `tmp-retry-${randomUUID()}`;
  // the first socket subscribes the process to the codespace's commit feed: the second one's open
  // then goes straight to the command that times out
  const first = await connectSocket(srv.url, token);
  const admin = redis.client();
  try {
    const started = Date.now();
    await admin.call("CLIENT", "PAUSE", "700", "ALL");
    const second = await connectSocket(srv.url, token, ["websocket"], { timeoutMs: 10_000 });
    assert.ok(Date.now() - started >= 500, "Redis was not paused long enough for a command timeout");
    assert.equal(second.connected.epoch, first.connected.epoch);
    second.socket.close();
  } finally {
    first.socket.close();
    admin.disconnect();
  }
});
