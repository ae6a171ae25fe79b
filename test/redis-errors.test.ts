/**
 * A Redis error reply reaches the operator (server/store/redis-store.ts, `warnLimited`): a key of
 * another type under a codespace's name (WRONGTYPE) fails the codespace's opening (`operation_error`
 * store_unavailable for `connected`, then a disconnect),
 * and the server logs one warn line naming the Redis error, the command and the key, not one per
 * request. Real redis-server, real server process.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { waitForOutput } from "./helpers/editors.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { io } from "socket.io-client";
import { nextEvent } from "./helpers/socket.js";

let redis: RedisServerHandle;
let srv: ServerProcess;
before(async () => {
  redis = await startRedis();
  srv = await startServerProcess({ REDIS_URL: redis.url });
});
after(async () => {
  await srv?.stop();
  await redis?.stop();
});

test("a string key under a codespace's name: its opening fails with store_unavailable, and one warn line with WRONGTYPE and the key", { timeout: 30_000 }, async () => {
  const id = `tmp-${randomUUID()}`;
  const client = redis.client();
  await client.set(id, "not a codespace");
  for (let i = 0; i < 3; i++) {
    const socket = io(`${srv.url}/codespace`, { auth: { token: id }, transports: ["websocket"], reconnection: false, forceNew: true });
    try {
      const refused = await nextEvent<{ event: string; error: { code: string } }>(socket, "operation_error", 10_000);
      assert.deepEqual([refused.event, refused.error.code], ["connected", "store_unavailable"]);
    } finally {
      socket.close();
    }
  }
  const [line] = await waitForOutput(srv.output, /^.*Redis refused a command.*$/m, 10_000);
  const entry = JSON.parse(line) as { level: number; err: string; key: string };
  assert.equal(entry.level, 40);
  assert.match(entry.err, /^WRONGTYPE/);
  assert.equal(entry.key, id);
  assert.equal(srv.output().split("Redis refused a command").length - 1, 1, "one line for the three refusals (at most one per 10 s)");
});

test("REDIS_URL naming a database this Redis does not have: never ready, one error line, the waiting lines name it", { timeout: 30_000 }, async () => {
  const bad = await startServerProcess({ REDIS_URL: `${redis.url}/99` }, { waitReady: false });
  try {
    const [line] = await waitForOutput(bad.output, /^.*the Redis store cannot start.*$/m, 10_000);
    const entry = JSON.parse(line) as { level: number; err: string };
    assert.equal(entry.level, 50);
    assert.match(entry.err, /REDIS_URL selects database 99, which this Redis refuses \(ERR DB index is out of range\)/);
    const [waiting] = await waitForOutput(bad.output, /^.*"msg":"waiting for Redis.*$/m, 10_000);
    assert.match(waiting, /"lastError":"REDIS_URL selects database 99/);
    assert.equal((await fetch(`${bad.url}/readyz`)).status, 503, "never ready: nothing goes to database 0");
  } finally {
    await bad.kill();
  }
});
