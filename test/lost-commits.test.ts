/**
 * Commits lost by the store (server/codespace.ts, "Lost commits"): a Redis failover can promote a
 * replica that lacks the latest commits, so the stored version goes back within an epoch. Here the
 * loss is made by hand on a real redis-server (the hash rewritten to an earlier version, as the
 * promoted replica would hold it), then each way a process can notice is driven with real
 * RedisStores: the feed's versions going back, a commit based on a version the store lacks, a resend
 * whose acknowledgement the store cannot confirm. Each starts a new epoch (never the lost versions
 * reused for other text) and has every process's sockets reload. Last, with a real replica and
 * REDIS_WAIT_REPLICAS=1: a resend is not acknowledged while no replica holds the original commit.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { InvalidVersionError, StoreUnavailableError } from "../server/errors.js";
import { codespaceProcess, insertBatch, replay, type CodespaceProcess } from "./helpers/codespace-process.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";

let redis: RedisServerHandle;
let client: Redis;
before(async () => {
  redis = await startRedis();
  client = redis.client();
});
after(async () => redis?.stop());

const PREFIX = "lost:";

/** Two processes on one codespace, five commits (v1..v5: "a".."e"), both feeds at v5. */
async function fiveCommits(): Promise<{ id: string; epoch: string; x: CodespaceProcess; y: CodespaceProcess }> {
  const id = `tmp-lost-${randomUUID()}`;
  const x = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  const y = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  const { epoch } = await x.cs.open();
  await y.cs.open();
  for (let v = 0; v < 5; v++) assert.equal(await x.cs.submit(insertBatch(epoch, v, "x", v, "abcde"[v]!), "sx"), v + 1);
  await Promise.all([x.reached(5), y.reached(5)]);
  return { id, epoch, x, y };
}

/** What a replica promoted before it received v4 and v5 holds. */
async function loseLastTwo(id: string): Promise<void> {
  await client.hset(PREFIX + id, "version", 3, "code", "abc");
  await client.hdel(PREFIX + id, "h:4", "h:5");
}

test("the feed's versions go back (a process without a cache commits on the rolled-back store): a new epoch, every process's sockets reload, the reused version is not broadcast", async () => {
  const { id, epoch, x, y } = await fiveCommits();
  const z = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  try {
    await loseLastTwo(id);
    // a process that loads the codespace only now sees version 3 and commits version 4 on it
    await z.cs.open();
    assert.equal(await z.cs.submit(insertBatch(epoch, 3, "z", 3, "Z"), "sz"), 4);
    const [ex, ey] = await Promise.all([x.epochChanged(), y.epochChanged()]);
    const stored = await client.hmget(PREFIX + id, "epoch", "version", "code");
    assert.notEqual(stored[0], epoch, "a new epoch");
    assert.equal(ex, stored[0]);
    assert.equal(ey, stored[0]);
    assert.deepEqual(stored.slice(1), ["4", "abcZ"], "the stored text is kept");
    assert.ok(!y.seen.some((u) => u.clientID === "z"), "version 4 of other text never reached the sockets that saw the lost version 4");
    assert.equal(replay("", y.seen), "abcde", "what y broadcast is exactly the lost branch, nothing mixed in");
  } finally {
    await Promise.all([x.close(), y.close(), z.close()]);
  }
});

test("a commit based on a version the store lost: refused with invalid_version, a new epoch, the sockets reload", async () => {
  const { id, epoch, x, y } = await fiveCommits();
  try {
    await loseLastTwo(id);
    await assert.rejects(x.cs.submit(insertBatch(epoch, 5, "x2", 5, "f"), "sx"), (err: unknown) => err instanceof InvalidVersionError && /lost recent updates/.test(err.message));
    const [ex, ey] = await Promise.all([x.epochChanged(), y.epochChanged()]);
    const [stored, version, code] = await client.hmget(PREFIX + id, "epoch", "version", "code");
    assert.notEqual(stored, epoch);
    assert.equal(ex, stored);
    assert.equal(ey, stored);
    assert.deepEqual([version, code], ["3", "abc"], "nothing written but the epoch");
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
});

test("a resend of an update the store lost: not acknowledged (the cache has it, the store does not): a new epoch", async () => {
  const { id, epoch, x, y } = await fiveCommits();
  try {
    await loseLastTwo(id);
    // the client did not get the ack of "e" (version 4 -> 5) and resends it: x's cache holds it
    await assert.rejects(x.cs.submit(insertBatch(epoch, 4, "x", 4, "e"), "sx"), InvalidVersionError);
    const [, ey] = await Promise.all([x.epochChanged(), y.epochChanged()]);
    assert.equal(ey, await client.hget(PREFIX + id, "epoch"));
    assert.notEqual(ey, epoch);
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
});

/** `p`'s feed lags its command connection by `ms` (order kept): a slower subscriber connection. */
function slowFeed(p: CodespaceProcess, ms: number): void {
  const watch = p.store.watch.bind(p.store);
  p.store.watch = (id, listener, resumed) => watch(id, (c) => void setTimeout(() => listener(c), ms), resumed);
}

test("a new epoch read by a joining socket before the feed announces it: the sockets already there reload once", async () => {
  const id = `tmp-race-${randomUUID()}`;
  const x = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  const y = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  slowFeed(x, 200);
  try {
    const { epoch } = await x.cs.open();
    await y.cs.open();
    for (let v = 0; v < 3; v++) assert.equal(await y.cs.submit(insertBatch(epoch, v, "y", v, "abc"[v]!), "sy"), v + 1);
    await x.reached(3);
    // y commits v4 (still on its way to x), then restarts the epoch; a socket joins at x at once
    assert.equal(await y.cs.submit(insertBatch(epoch, 3, "y", 3, "d"), "sy"), 4);
    const restarted = await y.store.restart(id, epoch, randomUUID());
    assert.equal(restarted.status, "restarted");
    if (restarted.status !== "restarted") return;
    await x.cs.open();
    assert.deepEqual(x.epochs, [restarted.epoch], "x's earlier sockets reload as soon as the join shows the new epoch");
    // the lagging feed then delivers the old epoch's v4 and the announcement: nothing more
    await y.epochChanged();
    assert.equal(await y.cs.submit(insertBatch(restarted.epoch, 4, "y2", 4, "Z"), "sy2"), 5);
    await x.reached(5);
    assert.deepEqual(x.epochs, [restarted.epoch], "one reload for one restart, none for the old epoch's late commit");
    assert.ok(!x.seen.some((u) => u.version === 4 && u.clientID === "y"), "the old epoch's late v4 is not broadcast");
  } finally {
    await Promise.all([x.close(), y.close()]);
  }
});

test("the feed missed the commits that reused lost versions (subscriber reconnecting after the failover): the resubscription check starts a new epoch", async () => {
  const id = `tmp-missed-${randomUUID()}`;
  const x = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  const z = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  // x's feed never delivers z's commits: what a subscriber that is down while they are made misses
  const watch = x.store.watch.bind(x.store);
  x.store.watch = (cs, listener, resumed) => watch(cs, (c) => void (c.updates.some((u) => u.clientID === "z") || listener(c)), resumed);
  try {
    const { epoch } = await x.cs.open();
    for (let v = 0; v < 5; v++) assert.equal(await x.cs.submit(insertBatch(epoch, v, "x", v, "abcde"[v]!), "sx"), v + 1);
    await x.reached(5);
    await loseLastTwo(id);
    // a process that loads the codespace now commits v4' and v5' on the rolled-back store; x misses them
    await z.cs.open();
    assert.equal(await z.cs.submit(insertBatch(epoch, 3, "z", 3, "Z"), "sz"), 4);
    assert.equal(await z.cs.submit(insertBatch(epoch, 4, "z", 4, "Y"), "sz"), 5);
    // x's subscriber comes back (ioredis reconnects and resubscribes): the versions alone look fine
    (x.store as unknown as { sub: Redis }).sub.disconnect(true);
    const moved = await x.epochChanged();
    const stored = await client.hget(PREFIX + id, "epoch");
    assert.notEqual(stored, epoch, "a new epoch: x's sockets saw a v5 the store no longer has");
    assert.equal(moved, stored);
  } finally {
    await Promise.all([x.close(), z.close()]);
  }
});

test("a restart's epoch sorts after the one it replaces even when the new master's clock is behind", async () => {
  const id = `tmp-clock-${randomUUID()}`;
  const x = await codespaceProcess(id, { url: redis.url, keyPrefix: PREFIX });
  try {
    await x.cs.open();
    // the old master's clock was an hour ahead of this one's
    const ahead = `${String(Date.now() + 3_600_000).padStart(15, "0")}-${randomUUID()}`;
    await client.hset(PREFIX + id, "epoch", ahead);
    const r = await x.store.restart(id, ahead, randomUUID());
    assert.equal(r.status, "restarted");
    if (r.status === "restarted") assert.ok(r.epoch > ahead, `${r.epoch} sorts after ${ahead}`);
  } finally {
    await x.close();
  }
});

test("REDIS_WAIT_REPLICAS=1: a resend is acknowledged only once a replica holds the original commit", { timeout: 60_000 }, async () => {
  const master = await startRedis();
  const replica = await startRedis({ args: ["--replicaof", "127.0.0.1", String(master.port)] });
  const m = master.client();
  const r = replica.client();
  const online = async (): Promise<void> => {
    for (let i = 0; i < 500 && !/slave0:.*state=online/.test(await m.info("replication")); i++) await new Promise((res) => setTimeout(res, 20));
    assert.match(await m.info("replication"), /slave0:.*state=online/, "the replica is in sync");
  };
  const id = `tmp-wait-${randomUUID()}`;
  let x: CodespaceProcess | undefined;
  try {
    await online();
    x = await codespaceProcess(id, { url: master.url, keyPrefix: "", waitReplicas: 1 });
    const { epoch } = await x.cs.open();
    assert.equal(await x.cs.submit(insertBatch(epoch, 0, "w", 0, "a"), "s"), 1, "replicated: acknowledged");
    // the replica goes away: the next commit is applied on the master but not confirmed
    await r.replicaof("NO", "ONE");
    await m.client("KILL", "TYPE", "replica");
    const batch = insertBatch(epoch, 1, "w", 1, "b");
    await assert.rejects(x.cs.submit(batch, "s"), StoreUnavailableError);
    assert.equal(await m.hget(id, "version"), "2", "the master holds it");
    // the client resends as told: the store holds it, but no replica does
    await assert.rejects(x.cs.submit(batch, "s"), (err: unknown) => err instanceof StoreUnavailableError && /confirmed by 0 of 1/.test(err.message));
    // the replica is back: now the resend is acknowledged, once
    await r.replicaof("127.0.0.1", String(master.port));
    await online();
    assert.equal(await x.cs.submit(batch, "s"), 2);
    assert.equal(await m.hget(id, "code"), "ab", "applied once");
  } finally {
    await x?.close();
    await replica.stop();
    await master.stop();
  }
});
