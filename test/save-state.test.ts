/**
 * The durable save state of the code store (SaveState in server/store/code-store.ts), one suite for
 * MemoryStore, RedisStore on a real redis-server and RedisStore on a real local Redis Cluster: a commit marks the codespace unsaved and holds
 * its TTL, claims respect the debounce and leases, settling clears it (or keeps newer commits
 * unsaved) and restores the TTL, deferrals count attempts across owners.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { CodeStore, CommitSave } from "../server/store/code-store.js";
import { MemoryStore } from "../server/store/memory-store.js";
import { RedisStore } from "../server/store/redis-store.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startRedisCluster, type RedisClusterHandle } from "./helpers/redis-cluster.js";

const SAVE: CommitSave = { debounceMs: 100, maxWaitMs: 400, retentionSeconds: 30 };
const claimOpts = (owner: string, force = false) => ({ owner, leaseMs: 400, debounceMs: SAVE.debounceMs, maxWaitMs: SAVE.maxWaitMs, force });
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function commitText(store: CodeStore, cs: string, epoch: string, base: number, insert: string, ttlSeconds = 60, save: CommitSave | null = SAVE): Promise<void> {
  const snap = await store.load(cs);
  const code = (snap?.code ?? "") + insert;
  const r = await store.commit(cs, { epoch, baseVersion: base, code, updates: [{ clientID: "c", changes: [{ from: code.length - insert.length, to: code.length - insert.length, insert }] }], ttlSeconds, save: save ?? undefined });
  assert.equal(r.status, "ok");
}

function suite(name: string, make: () => Promise<{ store: CodeStore; redis?: Redis }>, dispose: (store: CodeStore) => Promise<void>): void {
  describe(name, () => {
    let store: CodeStore;
    let redis: Redis | undefined;
    before(async () => ({ store, redis } = await make()));
    after(async () => dispose(store));

    test("a commit with save marks it unsaved: busy until debounced, then claimed with the current code; one owner at a time", { timeout: 10_000 }, async () => {
      const cs = randomUUID();
      const { epoch } = await store.open(cs, 60, "x");
      assert.deepEqual(await store.claimSave(cs, claimOpts("A")), { status: "clean" });
      await commitText(store, cs, epoch, 0, "y");
      if (redis) assert.ok((await redis.zscore("ss:codespace:saves", cs)) !== null, "the due index knows it");
      const early = await store.claimSave(cs, claimOpts("A"));
      assert.equal(early.status, "busy");
      await delay(150);
      const c = await store.claimSave(cs, claimOpts("A"));
      assert.equal(c.status, "claimed");
      if (c.status !== "claimed") return;
      assert.deepEqual([c.epoch, c.version, c.code, c.attempts], [epoch, 1, "xy", 0]);
      assert.equal((await store.claimSave(cs, claimOpts("B"))).status, "busy", "a second owner during the lease");
      assert.equal((await store.claimSave(cs, claimOpts("B", true))).status, "busy", "force does not break another's lease");
      assert.equal(await store.settleSave(cs, "A", { epoch, version: 1, claimedAt: c.now, debounceMs: 100, maxWaitMs: 400 }), "clean");
      assert.deepEqual(await store.claimSave(cs, claimOpts("B")), { status: "clean" });
      assert.ok(!(await store.dueSaves(1000)).includes(cs));
    });

    test("a commit after the claim keeps it unsaved: settle answers dirty and the next claim sends the newer version", { timeout: 10_000 }, async () => {
      const cs = randomUUID();
      const { epoch } = await store.open(cs, 60);
      await commitText(store, cs, epoch, 0, "a");
      const c = await store.claimSave(cs, claimOpts("A", true));
      assert.equal(c.status, "claimed");
      if (c.status !== "claimed") return;
      await commitText(store, cs, epoch, 1, "b");
      assert.equal(await store.settleSave(cs, "A", { epoch, version: 1, claimedAt: c.now, debounceMs: 100, maxWaitMs: 400 }), "dirty");
      await delay(150);
      if (redis) assert.ok((await store.dueSaves(1000)).includes(cs));
      const next = await store.claimSave(cs, claimOpts("B"));
      assert.equal(next.status, "claimed");
      if (next.status === "claimed") assert.deepEqual([next.version, next.code], [2, "ab"]);
      assert.equal(await store.settleSave(cs, "B", { epoch: "another epoch", version: 2, claimedAt: 0, debounceMs: 100, maxWaitMs: 400 }), "lost");
    });

    test("a deferred save keeps its lease for the delay, counts the attempt for whoever claims next; release frees it at once", { timeout: 10_000 }, async () => {
      const cs = randomUUID();
      const { epoch } = await store.open(cs, 60);
      await commitText(store, cs, epoch, 0, "a");
      assert.equal((await store.claimSave(cs, claimOpts("A", true))).status, "claimed");
      await store.deferSave(cs, "A", 300);
      assert.equal((await store.claimSave(cs, claimOpts("B", true))).status, "busy");
      await delay(350);
      const b = await store.claimSave(cs, claimOpts("B"));
      assert.equal(b.status, "claimed");
      if (b.status === "claimed") assert.equal(b.attempts, 1);
      await store.releaseSave(cs, "B");
      assert.equal((await store.claimSave(cs, claimOpts("C"))).status, "claimed");
    });

    test("commits without save (tmp-) are never unsaved", { timeout: 10_000 }, async () => {
      const cs = `tmp-${randomUUID().slice(0, 8)}`;
      const { epoch } = await store.open(cs, 60);
      await commitText(store, cs, epoch, 0, "a", 60, null);
      assert.deepEqual(await store.claimSave(cs, claimOpts("A", true)), { status: "clean" });
      assert.deepEqual(await store.claimSave(randomUUID(), claimOpts("A", true)), { status: "gone" });
    });

    test("the TTL is held while unsaved, and expiry resumes (counted from the last commit) once saved", { timeout: 15_000 }, async () => {
      const cs = randomUUID();
      const { epoch } = await store.open(cs, 1);
      await commitText(store, cs, epoch, 0, "keep me", 1);
      await delay(1600);
      assert.equal((await store.load(cs))?.code, "keep me", "expired while unsaved");
      const c = await store.claimSave(cs, claimOpts("A"));
      assert.equal(c.status, "claimed");
      if (c.status !== "claimed") return;
      const gone = new Promise<void>((resolve) => store.onExpired((id) => id === cs && resolve()));
      assert.equal(await store.settleSave(cs, "A", { epoch, version: 1, claimedAt: c.now, debounceMs: 100, maxWaitMs: 400 }), "clean");
      await Promise.race([gone, delay(5000).then(() => assert.fail("no expiry after the save"))]);
      assert.equal(await store.load(cs), null);
    });
  });
}

suite("MemoryStore", async () => ({ store: new MemoryStore({ historyLength: 10 }) }), (s) => s.close());

let server: RedisServerHandle;
suite(
  "RedisStore",
  async () => {
    server = await startRedis();
    const store = await RedisStore.connect({ url: server.url, keyPrefix: "ss:", historyLength: 10 });
    return { store, redis: server.client() };
  },
  async (s) => {
    await s.close();
    await server.stop();
  },
);

let cluster: RedisClusterHandle;
suite(
  "RedisStore on a Redis Cluster (claims in each codespace's slot, the index on its own master)",
  async () => {
    cluster = await startRedisCluster();
    const store = await RedisStore.connect({ clusterNodes: cluster.seedNodes(), keyPrefix: "ss:", historyLength: 10 });
    return { store, redis: cluster.clusterClient() as unknown as Redis };
  },
  async (s) => {
    await s.close();
    await cluster.stop();
  },
);
