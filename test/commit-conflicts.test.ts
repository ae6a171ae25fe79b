/**
 * A commit that loses the compare-and-set (server/codespace.ts): two processes' Codespaces (each
 * with its own RedisStore on one real redis-server) commit at the same base version in the same
 * turn. Exactly one loses, catches up, rebases and commits again; `onConflict` is called once for
 * it, both batches are applied exactly once, and the stored `code` equals the text both feeds built.
 * The metric it feeds (`codespace_commit_conflicts_total`) is tested in metrics.test.ts.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { codespaceProcess, insertBatch, replay } from "./helpers/codespace-process.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";

let redis: RedisServerHandle;
before(async () => (redis = await startRedis()));
after(async () => redis?.stop());

test("two processes commit at the same version in one turn: one conflict, both applied once, code equals the feeds' text", async () => {
  const id = `tmp-conflict-${randomUUID()}`;
  const x = await codespaceProcess(id, { url: redis.url, keyPrefix: "conflict:" });
  const y = await codespaceProcess(id, { url: redis.url, keyPrefix: "conflict:" });
  try {
    const { epoch } = await x.cs.open();
    await y.cs.open();
    // warm both caches: each commits once and has seen the other's commit
    assert.equal(await x.cs.submit(insertBatch(epoch, 0, "x", 0, "ab"), "sx"), 1);
    await y.reached(1);
    assert.equal(await y.cs.submit(insertBatch(epoch, 1, "y", 2, "cd"), "sy"), 2);
    await x.reached(2);
    assert.equal(x.conflicts() + y.conflicts(), 0, "sequential commits do not conflict");

    // the same base version, in the same turn: neither can have seen the other's commit
    const [vx, vy] = await Promise.all([x.cs.submit(insertBatch(epoch, 2, "x", 0, "X"), "sx"), y.cs.submit(insertBatch(epoch, 2, "y", 4, "Y"), "sy")]);
    assert.deepEqual([vx, vy].sort(), [3, 4], "both batches committed, each once");
    assert.equal(x.conflicts() + y.conflicts(), 1, "exactly one commit lost the compare-and-set and was retried");

    await Promise.all([x.reached(4), y.reached(4)]);
    const text = replay("", x.seen);
    assert.equal(text, "XabcdY");
    assert.equal(replay("", y.seen), text, "both processes' feeds build the same text");
    const stored = await x.store.open(id, 60);
    assert.equal(stored.version, 4);
    assert.equal(stored.code, text, "the stored code equals what the feeds delivered");
  } finally {
    await x.close();
    await y.close();
  }
});
