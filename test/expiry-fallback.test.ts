/**
 * Expiry when Redis refuses CONFIG (managed Redis): the server logs ONE clear warning at start and
 * falls back to checking on access; an edit to a codespace whose key is gone is refused with
 * `invalid_version` although no notification ever arrives, the edit is never stored, and connected
 * clients never get an empty document silently: a recreated codespace always has a new epoch.
 * Real redis-server with CONFIG renamed away and notifications off; in-process server with a
 * captured log.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { connectSocket, emitAck } from "./helpers/socket.js";

let redis: RedisServerHandle;
let srv: CodespaceServer;
const lines: { level: number; msg: string }[] = [];

before(async () => {
  redis = await startRedis({ args: ["--notify-keyspace-events", "", "--rename-command", "CONFIG", ""] });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  ({ server: srv } = await startInProcessServer({ REDIS_URL: redis.url }, { logger: pino({ level: "info" }, sink) }));
});
after(async () => {
  await srv?.close();
  await redis?.stop();
});

test("CONFIG refused: exactly one warning naming notify-keyspace-events", () => {
  const warnings = lines.filter((l) => l.level === 40 && /notify-keyspace-events/.test(l.msg));
  assert.equal(warnings.length, 1, JSON.stringify(lines));
});

test("an edit after the key vanished (no notification) is refused with invalid_version and never stored; the client learns of the new epoch", async () => {
  const cs = `tmp-gone-${randomUUID()}`;
  const url = `http://127.0.0.1:${srv.port}`;
  const { socket, connected } = await connectSocket(url, cs);
  const rc = redis.client();
  try {
    const up = (version: number, insert: string) =>
      emitAck(socket, "insert_value", { epoch: connected.epoch, version, updates: [{ clientID: "g", changes: [{ from: 0, to: 0, insert }] }] });
    assert.deepEqual(await up(0, "kept"), { ok: true, version: 1 });
    assert.equal(await rc.del(cs), 1); // what an expiry does, minus the notification
    for (const [version, text] of [[1, "lost"], [1, "again"], [0, "old"]] as const) {
      const res = await up(version, text);
      assert.equal(!res.ok && res.error.code, "invalid_version", `${text}: ${JSON.stringify(res)}`);
    }
    const pulled = await emitAck(socket, "pull", { epoch: connected.epoch, version: 1 });
    assert.equal(!pulled.ok && pulled.error.code, "invalid_version");
    const stored = await rc.hget(cs, "code");
    assert.ok(stored === null || stored === "", `an edit reached the store: ${stored}`);
    const again = await connectSocket(url, cs);
    again.socket.close();
    assert.notEqual(again.connected.epoch, connected.epoch, "a recreated codespace must carry a new epoch");
    assert.equal(again.connected.code, "");
  } finally {
    socket.close();
  }
});
