/**
 * The product on a REAL local Redis Cluster (test/helpers/redis-cluster.ts: 3 masters, 3 replicas,
 * cluster-node-timeout 1 s), with two real server processes on `REDIS_CLUSTER_NODES`:
 * - a real trace replayed by one writer, readers on the other process;
 * - concurrent writers on codespaces whose keys live on each of the 3 masters;
 * - presence, selections and `expired` for keys on every master, across the processes;
 * - an expiry no keyspace event reported is found after the master's subscription comes back;
 * - the commit feed for keys with braces (channel in the key's slot);
 * - durable saves (its own cluster, a stub site): codespaces on every master saved at their version;
 * - failover (its own cluster): SIGKILL the master of a codespace's slot while two writers type,
 *   REDIS_WAIT_REPLICAS=1: the replica takes over, editing resumes by itself, every acknowledged
 *   update is in the final text exactly once;
 * - WAIT with no replica to confirm: store_unavailable, the commit stored (a resend deduplicates);
 * - one master stopped for good (its own cluster, no replicas): the other masters' codespaces keep
 *   working, `/readyz` is 503 naming the master, and 200 again once it is back; the same with every
 *   master down.
 * The first block shares one cluster and two processes; every test uses its own codespaces.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { CodespaceClient } from "../client/index.js";
import { RedisStore } from "../server/store/redis-store.js";
import { StoreUnavailableError } from "../server/errors.js";
import { keySlot } from "../server/store/feed-channel.js";
import { roomOf } from "../server/namespace/types.js";
import type { Commit } from "../server/store/code-store.js";
import { keysOnEveryMaster, startRedisCluster, type RedisClusterHandle } from "./helpers/redis-cluster.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, emitAck, type ClientSocket } from "./helpers/socket.js";
import {
  assertConverged,
  closeAll,
  connectEditor,
  editAll,
  streamEdits,
  waitForOutput,
  withTimeout,
  type Editor,
} from "./helpers/editors.js";
import { loadTrace, typeTrace } from "./helpers/traces.js";
import { pythonShareToken } from "./helpers/share-token.js";
import { startStubSite, type StubSite } from "./helpers/stub-site.js";
import { stored } from "./helpers/editors.js";


/** Resolves with the first `event` payload on `socket` that satisfies `pred`. */
function nextEvent<T>(socket: ClientSocket, event: string, pred: (p: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const on = (p: T): void => {
      if (!pred(p)) return;
      (socket as unknown as { off(e: string, f: (p: T) => void): void }).off(event, on);
      resolve(p);
    };
    (socket as unknown as { on(e: string, f: (p: T) => void): void }).on(event, on);
  });
}

async function readyz(server: ServerProcess): Promise<{ status: number; body: { status: string; problems?: string[] } }> {
  const res = await fetch(`${server.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; problems?: string[] } };
}

/** Polls `/readyz` until `pred` holds (bounded). */
async function waitReadyz(server: ServerProcess, pred: (r: Awaited<ReturnType<typeof readyz>>) => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await readyz(server).catch(() => undefined);
    if (r && pred(r)) return r;
    if (Date.now() > deadline) throw new Error(`/readyz: ${what} not seen within ${timeoutMs} ms (last: ${JSON.stringify(r)})`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** A server process, once `/readyz` says it is connected to the cluster (the port opens before). */
async function startReady(env: Record<string, string>, opts?: Parameters<typeof startServerProcess>[1]): Promise<ServerProcess> {
  const server = await startServerProcess(env, opts);
  await waitReadyz(server, (x) => x.status === 200, 30_000, "ready at start");
  return server;
}

describe("two server processes on a Redis Cluster (3 masters, 3 replicas)", () => {
  let cluster: RedisClusterHandle;
  let raw: Cluster;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    cluster = await startRedisCluster();
    raw = cluster.clusterClient();
    // a replay types far faster than people do: lift the per-socket rate limit
    const env = { REDIS_CLUSTER_NODES: cluster.seeds, RATE_LIMIT_EVENTS: "1000000", REDIS_WAIT_REPLICAS: "1" };
    [a, b] = await Promise.all([startReady(env), startReady(env)]);
  });
  after(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  test("both processes are ready and say they run on the cluster", async () => {
    assert.match(a.output(), /"store":"redis-cluster"/);
    for (const s of [a, b]) assert.equal((await readyz(s)).status, 200);
  });

  test("a real trace (sveltecomponent) typed on one process reaches readers on the other and the stored code", { timeout: 120_000 }, async () => {
    const trace = loadTrace("sveltecomponent.json.gz");
    const token = `tmp-cluster-trace-${randomUUID()}`;
    const writer = await CodespaceClient.connect(a.url, token, { transports: ["websocket"] });
    const readers = await Promise.all([
      CodespaceClient.connect(b.url, token, { transports: ["polling"] }),
      CodespaceClient.connect(b.url, token, { transports: ["websocket"] }),
    ]);
    try {
      await typeTrace(writer, trace);
      assert.equal(writer.text, trace.endContent, "the writer's own replay");
      await withTimeout(writer.whenSynced(), 90_000, "writer synced");
      await withTimeout(Promise.all(readers.map((r) => r.waitForVersion(writer.version))), 30_000, "readers caught up");
      for (const r of readers) assert.equal(r.text, trace.endContent);
      assert.equal(await raw.hget(token, "code"), trace.endContent);
      assert.equal(Number(await raw.hget(token, "version")), writer.version);
    } finally {
      writer.close();
      for (const r of readers) r.close();
    }
  });

  test("concurrent writers on both processes, codespaces on each of the 3 masters: they converge, nothing lost or doubled", async () => {
    const tokens = await keysOnEveryMaster(cluster, `tmp-cw-${randomUUID().slice(0, 8)}`);
    assert.equal(new Set(await Promise.all(tokens.map((t) => cluster.masterOf(t)))).size, 3, "one codespace per master");
    const groups: Editor[][] = [];
    try {
      for (const [i, token] of tokens.entries()) {
        groups.push(
          await Promise.all([
            connectEditor(a.url, token, `a${i}`, "websocket"),
            connectEditor(b.url, token, `b${i}`, "websocket"),
            connectEditor(b.url, token, `c${i}`, "polling"),
          ]),
        );
      }
      await Promise.all(groups.map((eds) => editAll(eds, 15)));
      for (const [i, eds] of groups.entries()) {
        const code = await assertConverged(raw as unknown as Redis, tokens[i]!, eds);
        for (const ed of eds) assert.equal(ed.confirmed.length, 15);
        assert.equal(code.length, eds.reduce((n, ed) => n + ed.applied.join("").length, 0), "exactly the confirmed markers");
      }
    } finally {
      for (const eds of groups) closeAll(eds);
    }
  });

  test("presence, selections and `expired` reach sockets on both processes, for keys on every master", async () => {
    const tokens = await keysOnEveryMaster(cluster, `tmp-pse-${randomUUID().slice(0, 8)}`);
    assert.equal(tokens.length, 3);
    for (const token of tokens) {
      const s1 = await connectSocket(a.url, token);
      const joined = nextEvent<{ id: string }>(s1.socket, "user_joined");
      const s2 = await connectSocket(b.url, token);
      try {
        // presence: the list of the second holds the first (other process); the first hears the join
        assert.ok(s2.connected.users.some((u: { id: string }) => u.id === s1.connected.id), `${token}: users of the second`);
        assert.equal((await withTimeout(joined, 10_000, "user_joined across processes")).id, s2.connected.id);
        // selections, both ways
        const sel2 = nextEvent<{ sender: string; selections: unknown }>(s2.socket, "create_selection");
        assert.deepEqual(await emitAck(s1.socket, "create_selection", { selections: [{ anchor: 1, head: 2 }] }), { ok: true });
        const got2 = await withTimeout(sel2, 10_000, "selection a -> b");
        assert.equal(got2.sender, s1.connected.id);
        assert.deepEqual(got2.selections, [{ anchor: 1, head: 2 }]);
        const sel1 = nextEvent<{ sender: string }>(s1.socket, "create_selection");
        assert.deepEqual(await emitAck(s2.socket, "create_selection", { selections: [{ anchor: 0, head: 0 }] }), { ok: true });
        assert.equal((await withTimeout(sel1, 10_000, "selection b -> a")).sender, s2.connected.id);
        // expiry on that master (a short TTL set behind the servers' back) reaches both processes
        const expired = [s1, s2].map((s) => nextEvent<{ codespace: string }>(s.socket, "expired"));
        assert.equal(await raw.pexpire(token, 50), 1);
        for (const e of await withTimeout(Promise.all(expired), 10_000, `expired of ${token} on both processes`)) {
          assert.equal(e.codespace, token);
        }
      } finally {
        s1.socket.close();
        s2.socket.close();
      }
    }
  });

  test("an expiry nobody heard (notifications off, then the subscriptions dropped) is still reported once the master is resubscribed", async () => {
    const [token] = await keysOnEveryMaster(cluster, `tmp-sweep-${randomUUID().slice(0, 8)}`);
    const node = cluster.client(await cluster.masterOf(token!));
    const s1 = await connectSocket(a.url, token);
    const s2 = await connectSocket(b.url, token);
    try {
      const expired = [s1, s2].map((s) => nextEvent<{ codespace: string }>(s.socket, "expired"));
      // no keyspace event can be emitted for this deletion: only the check after resubscribing can find it
      await node.config("SET", "notify-keyspace-events", "");
      assert.equal(await node.del(token!), 1);
      await node.client("KILL", "TYPE", "pubsub");
      for (const e of await withTimeout(Promise.all(expired), 10_000, "expired after the resubscription")) assert.equal(e.codespace, token);
      const [, flags] = (await node.config("GET", "notify-keyspace-events")) as string[];
      for (const f of ["K", "g", "x"]) assert.ok(flags!.includes(f), `the servers set notify-keyspace-events again (now ${flags})`);
    } finally {
      s1.socket.close();
      s2.socket.close();
    }
  });

  test("resharding: the codespace's slot moves to another master while two processes edit; no false `expired`, edits converge, a later expiry is still reported", async () => {
    const token = `tmp-move-${randomUUID()}`;
    const editors = await Promise.all([connectEditor(a.url, token, "m1", "websocket"), connectEditor(b.url, token, "m2", "websocket")]);
    let falseExpired = 0;
    for (const ed of editors) ed.client.socket.on("expired", () => falseExpired++);
    try {
      await editAll(editors, 5);
      const from = await cluster.masterOf(token);
      const to = (await cluster.masters()).find((p) => p !== from)!;
      await cluster.moveSlotOf(token, to);
      assert.equal(await cluster.masterOf(token), to, "the slot moved");
      await editAll(editors, 10);
      await assertConverged(raw as unknown as Redis, token, editors);
      assert.equal(falseExpired, 0, "a MIGRATE's del must not expire the codespace");
      const expired = editors.map((ed) => new Promise<void>((resolve) => ed.client.socket.once("expired", () => resolve())));
      assert.equal(await raw.pexpire(token, 50), 1);
      await withTimeout(Promise.all(expired), 10_000, "expiry on the new master reaches both processes");
    } finally {
      closeAll(editors);
    }
  });

  test("cluster mode (`npm run cluster`: dist/cluster/main.js, 2 workers) runs on REDIS_CLUSTER_NODES beside the other processes", async () => {
    const primary = await startReady(
      { REDIS_CLUSTER_NODES: cluster.seeds, WORKERS: "2" },
      { script: "dist/cluster/main.js", timeoutMs: 30_000 },
    );
    const token = `tmp-cm-${randomUUID()}`;
    const editors: Editor[] = [];
    try {
      assert.match(primary.output(), /"store":"redis-cluster"/);
      editors.push(
        ...(await Promise.all([
          connectEditor(primary.url, token, "w1", "websocket"),
          connectEditor(primary.url, token, "w2", "polling"),
          connectEditor(a.url, token, "x", "websocket"),
        ])),
      );
      await editAll(editors, 5);
      await assertConverged(raw as unknown as Redis, token, editors);
    } finally {
      closeAll(editors);
      assert.equal((await primary.stop()).code, 0, "the primary exits 0 after SIGTERM");
    }
  });

  test("the commit feed works for keys with braces (channel in the key's slot)", async () => {
    const seeds = cluster.seedNodes();
    const store = await RedisStore.connect({ clusterNodes: seeds, keyPrefix: "", historyLength: 10 });
    try {
      const tag = randomUUID().slice(0, 8);
      for (const cs of [`a}b-${tag}`, `a{}b-${tag}`, `x{${tag}}z`, `}{${tag}`, `{${tag}}`]) {
        const got: Commit[] = [];
        let onDelivered!: () => void;
        const delivered = new Promise<void>((resolve) => (onDelivered = resolve));
        await store.watch(cs, (c) => {
          got.push(c);
          onDelivered();
        });
        const { epoch } = await store.open(cs, 60);
        const update = { clientID: "k", changes: [{ from: 0, to: 0, insert: "x" }] };
        assert.deepEqual(await store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [update], ttlSeconds: 60 }), { status: "ok", version: 1 });
        await withTimeout(delivered, 5000, `feed of ${cs}`);
        assert.deepEqual(got[0]!.updates.map((u) => u.changes), [update.changes]);
        await store.unwatch(cs);
      }
    } finally {
      await store.close();
    }
  });
});

describe("durable saves on a Redis Cluster (SAVE_URL, two processes)", () => {
  const SECRET = "cluster-saves-secret";
  let cluster: RedisClusterHandle;
  let site: StubSite;
  let servers: ServerProcess[];

  before(async () => {
    [cluster, site] = await Promise.all([startRedisCluster(), startStubSite()]);
    const env = {
      REDIS_CLUSTER_NODES: cluster.seeds, SHARE_TOKEN_SECRET: SECRET, SAVE_URL: site.url, SAVE_SECRET: site.secret,
      SAVE_DEBOUNCE_MS: "300", SAVE_MAX_WAIT_MS: "1000", SAVE_TIMEOUT_MS: "500", SAVE_LEASE_MS: "1500", SAVE_RETRY_MAX_MS: "400",
    };
    servers = await Promise.all([startReady(env), startReady(env)]);
  });
  after(async () => {
    await Promise.allSettled((servers ?? []).map((s) => s.stop()));
    await site?.close();
    await cluster?.stop();
  });

  test("codespaces on every master, edited from both processes, reach the site at their stored version; the unsaved marks clear", { timeout: 90_000 }, async () => {
    const ids = await keysOnEveryMaster(cluster, randomUUID());
    assert.equal(ids.length, 3);
    const raw = cluster.clusterClient();
    const groups: Editor[][] = [];
    try {
      for (const [i, cs] of ids.entries()) {
        const token = pythonShareToken(SECRET, `${cs}:${Math.floor(Date.now() / 1000) + 3600}:edit`);
        groups.push([await connectEditor(servers[0]!.url, token, `s${i}`, "websocket"), await connectEditor(servers[1]!.url, token, `t${i}`, "websocket")]);
      }
      await Promise.all(groups.map((eds) => editAll(eds, 15)));
      for (const [i, cs] of ids.entries()) {
        await assertConverged(raw as unknown as Redis, cs, groups[i]!);
        const want = await stored(raw as unknown as Redis, cs);
        await site.waitFor(() => site.savesOf(cs).at(-1)?.version === want.version, 20_000, `version ${want.version} of ${cs} saved`);
        assert.equal(site.savesOf(cs).at(-1)!.code, want.code);
        await withTimeout(
          (async () => {
            while (await raw.hexists(cs, "dirty_since")) await new Promise((r) => setTimeout(r, 20));
          })(),
          5000,
          `${cs} clean after its save`,
        );
      }
    } finally {
      for (const eds of groups) closeAll(eds);
    }
  });
});

describe("failover: SIGKILL the master of a codespace's slot while two writers type (REDIS_WAIT_REPLICAS=1)", () => {
  let cluster: RedisClusterHandle;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    cluster = await startRedisCluster();
    const env = { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_WAIT_REPLICAS: "1" };
    [a, b] = await Promise.all([startReady(env), startReady(env)]);
  });
  after(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  test("the replica takes over, editing resumes by itself, every acknowledged update is in the text exactly once", { timeout: 120_000 }, async () => {
    const token = `tmp-failover-${randomUUID()}`;
    const master = await cluster.masterOf(token);
    const replica = await cluster.replicaOf(master);
    const editors = await Promise.all([connectEditor(a.url, token, "a", "websocket"), connectEditor(b.url, token, "b", "websocket")]);
    try {
      const stream = streamEdits(editors, 60_000);
      await withTimeout(stream.reach(20), 30_000, "20 edits before the kill");
      await cluster.kill(master);
      const atKill = stream.confirmed();
      await waitReadyz(a, (x) => x.status === 503 && (x.body.problems ?? []).includes(`master 127.0.0.1:${master} is down`), 10_000, "503 while the master is down");
      // the replica is promoted (cluster-node-timeout 1 s)
      const deadline = Date.now() + 20_000;
      while ((await cluster.masterOf(token).catch(() => master)) !== replica) {
        assert.ok(Date.now() < deadline, "the replica was not promoted within 20 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      // the old master rejoins as the new master's replica, so WAIT 1 can be satisfied again
      await cluster.restart(master);
      await withTimeout(stream.reach(atKill + 20), 30_000, "20 more edits after the failover");
      await stream.stop(60_000);
      const raw = cluster.clusterClient();
      await assertConverged(raw as unknown as Redis, token, editors);
      assert.equal(await cluster.masterOf(token), replica, "the codespace is now served by the promoted replica");
      for (const s of [a, b]) await waitReadyz(s, (x) => x.status === 200, 20_000, "ready again after the failover");
      for (const s of [a, b]) assert.doesNotMatch(s.output(), new RegExp(`master 127\\.0\\.0\\.1:${replica} is down`), "the promoted replica is never logged as down");
    } finally {
      closeAll(editors);
    }
  });
});

describe("masters down for good (3 masters, no replicas)", () => {
  let cluster: RedisClusterHandle;
  let a: ServerProcess;

  before(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 });
    a = await startReady({ REDIS_CLUSTER_NODES: cluster.seeds });
  });
  after(async () => {
    await a?.stop();
    await cluster?.stop();
  });

  test("with REDIS_WAIT_REPLICAS=1 and no replica, a commit is refused with store_unavailable; it is stored, so the resend is a duplicate", async () => {
    const store = await RedisStore.connect({ clusterNodes: cluster.seedNodes(), keyPrefix: "", historyLength: 10, waitReplicas: 1 });
    try {
      const cs = `tmp-wait-${randomUUID()}`;
      const { epoch } = await store.open(cs, 60);
      const update = { clientID: "k", changes: [{ from: 0, to: 0, insert: "x" }] };
      await assert.rejects(
        store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [update], ttlSeconds: 60 }),
        (err: Error) => err instanceof StoreUnavailableError && /confirmed by 0 of 1 replicas/.test(err.message),
      );
      assert.deepEqual(await store.load(cs), { epoch, version: 1, code: "x" });
    } finally {
      await store.close();
    }
  });

  test("the whole cluster unreachable: /readyz is 503 naming every master, then 200 by itself; then a room whose channel is on a dead master can be joined", { timeout: 120_000 }, async () => {
    const masters = await cluster.masters();
    assert.equal(masters.length, 3);
    await Promise.all(masters.map((p) => cluster.kill(p)));
    const r = await waitReadyz(a, (x) => x.status === 503 && masters.every((p) => (x.body.problems ?? []).includes(`master 127.0.0.1:${p} is down`)), 15_000, "503 naming every master");
    assert.equal(r.body.status, "unavailable");
    for (const p of masters) await cluster.restart(p);
    await cluster.waitHealthy();
    await waitReadyz(a, (x) => x.status === 200, 30_000, "200 after the cluster is back");

    // then one master down: a codespace whose key lives on a live master but whose room's sharded
    // channel (the adapter's `socket.io#/codespace#<room>#`) is in the dead one's slots can be joined
    // and edited (ioredis rejects that SSUBSCRIBE, which the adapter does not handle: once a crash)
    const raw = cluster.clusterClient();
    const slots = (await raw.cluster("SLOTS")) as unknown as [number, number, [string, number]][];
    const ownerOf = (key: string): number => slots.find(([f, t]) => keySlot(key) >= f && keySlot(key) <= t)![2][1];
    const down = masters[0]!;
    let crossed = "";
    for (let i = 0; !crossed; i++) {
      const t = `tmp-room-${i}-${randomUUID().slice(0, 8)}`;
      if (ownerOf(t) !== down && ownerOf(`socket.io#/codespace#${roomOf(t)}#`) === down) crossed = t;
    }
    await cluster.kill(down);
    await waitReadyz(a, (x) => x.status === 503, 15_000, "503 with one master down");
    const editors = await Promise.all([connectEditor(a.url, crossed, "r1", "websocket"), connectEditor(a.url, crossed, "r2", "polling")]);
    try {
      await editAll(editors, 3);
      await assertConverged(raw as unknown as Redis, crossed, editors);
    } finally {
      closeAll(editors);
    }
    await cluster.restart(down);
    await waitReadyz(a, (x) => x.status === 200, 20_000, "200 after the master is back");
  });

  test("codespaces on the other masters keep working; /readyz is 503 naming the master, then 200 once it is back", { timeout: 120_000 }, async () => {
    const tokens = await keysOnEveryMaster(cluster, `tmp-down-${randomUUID().slice(0, 8)}`);
    const down = await cluster.masterOf(tokens[0]!);
    const others = tokens.slice(1);
    const mark = a.output().length;
    const since = (): string => a.output().slice(mark);
    await cluster.kill(down);
    const r = await waitReadyz(a, (x) => x.status === 503 && (x.body.problems ?? []).some((p) => p.includes(`:${down}`)), 15_000, `503 naming :${down}`);
    assert.ok(r.body.problems!.some((p) => p === `master 127.0.0.1:${down} is down`), JSON.stringify(r.body));
    await waitForOutput(since, new RegExp(`redis cluster unavailable: [^"]*master 127\\.0\\.0\\.1:${down} is down`), 5000);
    const raw = cluster.clusterClient();
    for (const token of others) {
      const editors = await Promise.all([connectEditor(a.url, token, "x", "websocket"), connectEditor(a.url, token, "y", "polling")]).catch((err: Error) => {
        err.message += `\n--- server output since the kill ---\n${since().slice(-4000)}`;
        throw err;
      });
      try {
        await editAll(editors, 5);
        await assertConverged(raw as unknown as Redis, token, editors);
      } finally {
        closeAll(editors);
      }
    }
    await cluster.restart(down);
    await waitReadyz(a, (x) => x.status === 200, 20_000, "200 after the master is back");
    await waitForOutput(since, /redis cluster available/, 5000);
  });
});
