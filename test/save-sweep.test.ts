/**
 * The saver's sweep (server/persistence/saver.ts) on a real redis-server: of the codespaces a
 * process committed to, it forgets those saved by another process or gone, so its `owed` set does not
 * grow with every codespace it ever edited, and it has the store list the still-unsaved ones in the
 * due-save index again when their entry was lost (RedisStore.unsaved).
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { createLogger } from "../server/logger.js";
import { Saver } from "../server/persistence/saver.js";
import { RedisStore } from "../server/store/redis-store.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";

let redis: RedisServerHandle;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = redis.client();
});
after(async () => redis?.stop());

const SAVE = { debounceMs: 60_000, maxWaitMs: 60_000, retentionSeconds: 3600 };

test("a sweep forgets codespaces saved elsewhere or gone, keeps the unsaved one and lists it in the index again", async () => {
  const prefix = `sweep-${randomUUID().slice(0, 8)}:`;
  const store = await RedisStore.connect({ url: redis.url, keyPrefix: prefix, historyLength: 10 });
  const saved: string[] = [];
  const saver = new Saver({
    store,
    save: async ({ codespace }) => (saved.push(codespace), "saved"),
    debounceMs: SAVE.debounceMs,
    maxWaitMs: SAVE.maxWaitMs,
    leaseMs: 5000,
    timeoutMs: 5000,
    retryMaxMs: 1000,
    logger: createLogger("silent"),
  });
  try {
    const [unsaved, savedElsewhere, gone] = [randomUUID(), randomUUID(), randomUUID()];
    for (const cs of [unsaved, savedElsewhere]) {
      const { epoch } = await store.open(cs, 3600);
      const update = { clientID: "w", changes: [{ from: 0, to: 0, insert: cs.slice(0, 4) }] };
      assert.deepEqual(await store.commit(cs, { epoch, baseVersion: 0, code: cs.slice(0, 4), updates: [update], ttlSeconds: 3600, save: SAVE }), { status: "ok", version: 1 });
      saver.committed(cs);
    }
    saver.committed(gone);
    // another process saves one of them (claim and settle with its own owner)
    const other = await store.claimSave(savedElsewhere, { owner: "other", leaseMs: 5000, debounceMs: 0, maxWaitMs: 0, force: true });
    assert.equal(other.status, "claimed");
    if (other.status !== "claimed") return;
    assert.equal(await store.settleSave(savedElsewhere, "other", { epoch: other.epoch, version: other.version, claimedAt: other.now, ...SAVE }), "clean");
    // a failover of the index's master lost the unsaved one's entry
    await client.zrem(`${prefix}codespace:saves`, unsaved);
    assert.equal(saver.owedCount, 3);

    await saver.sweep();

    assert.equal(saver.owedCount, 1, "only the unsaved codespace is still owed");
    assert.notEqual(await client.zscore(`${prefix}codespace:saves`, unsaved), null, "listed in the due index again");
    assert.deepEqual(await store.dueSaves(10), [unsaved], "and due: the poll will claim it");
    assert.deepEqual(saved, [], "a sweep saves nothing itself");
  } finally {
    await saver.close(0);
    await store.close();
  }
});
