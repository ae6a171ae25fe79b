/**
 * Durable saves across processes on Redis (server/persistence/, issue "Never lose code"): real
 * redis-server, real server processes (dist/server/main.js), a real HTTP server as the site
 * (helpers/stub-site.ts) and real socket.io-client editors; share tokens made by Python.
 * Small SAVE_* timings keep every scenario to a few seconds.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { assertConverged, closeAll, connectEditor, editAll, editOnce, streamEdits, stored, waitForOutput, withTimeout, type Editor } from "./helpers/editors.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { join } from "node:path";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { pythonShareToken } from "./helpers/share-token.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";
import { startStubSite, type StubSite } from "./helpers/stub-site.js";

const SECRET = "redis-saves-secret";
let redis: RedisServerHandle;
let client: Redis;
let site: StubSite;

before(async () => {
  [redis, site] = await Promise.all([startRedis(), startStubSite()]);
  client = redis.client();
});
after(async () => {
  await site?.close();
  await redis?.stop();
});

const token = (cs: string) => pythonShareToken(SECRET, `${cs}:${Math.floor(Date.now() / 1000) + 3600}:edit`);

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    SHARE_TOKEN_SECRET: SECRET,
    SAVE_URL: site.url,
    SAVE_SECRET: site.secret,
    SAVE_DEBOUNCE_MS: "300",
    SAVE_MAX_WAIT_MS: "1000",
    SAVE_TIMEOUT_MS: "500",
    SAVE_LEASE_MS: "1500",
    SAVE_RETRY_MAX_MS: "400",
    ...extra,
  };
}

async function processes(n: number, extra: Record<string, string> = {}): Promise<ServerProcess[]> {
  return Promise.all(Array.from({ length: n }, () => startServerProcess(env(extra))));
}

/** Waits until the site holds the codespace's stored version, then checks it equals Redis's code. */
async function assertSiteHasStored(cs: string, timeoutMs = 20_000): Promise<{ code: string; version: number }> {
  const want = await stored(client, cs);
  await site.waitFor(() => site.savesOf(cs).at(-1)?.version === want.version, timeoutMs, `version ${want.version} of ${cs} saved`);
  assert.equal(site.savesOf(cs).at(-1)!.code, want.code, "the saved code differs from Redis");
  return want;
}

function assertGrowing(cs: string): void {
  const v = site.savesOf(cs).map((s) => s.version);
  for (let i = 1; i < v.length; i++) assert.ok(v[i]! > v[i - 1]!, `versions sent must only grow: ${v.join(",")}`);
}

describe("two processes", () => {
  let servers: ServerProcess[];
  before(async () => (servers = await processes(2)));
  after(async () => {
    site.mode = "ok";
    await Promise.all(servers.map((s) => s.stop()));
  });

  test("200 edits in about 2 s from two writers on two processes: a handful of saves, growing versions, the last equal to Redis", { timeout: 90_000 }, async () => {
    const cs = randomUUID();
    const editors = [await connectEditor(servers[0]!.url, token(cs), "p", "websocket"), await connectEditor(servers[1]!.url, token(cs), "q", "websocket")];
    try {
      await editAll(editors, 100, 20_000);
      await assertConverged(client, cs, editors);
      const { version } = await assertSiteHasStored(cs);
      assert.equal(version, 200);
      assertGrowing(cs);
      const n = site.savesOf(cs).length;
      assert.ok(n >= 1 && n <= 40, `${n} saves for 200 commits`);
      for (const s of site.savesOf(cs)) assert.equal(s.idempotencyKey, `${cs}:${s.epoch}:${s.version}`);
      assert.ok(site.requests.filter((r) => r.codespace === cs).every((r) => r.signatureOk));
      // saved: the unsaved mark is gone and the normal TTL (86400 s) is back
      await withTimeout((async () => { while (await client.hexists(cs, "dirty_since")) await new Promise((r) => setTimeout(r, 20)); })(), 5000, "clean");
      const ttl = await client.ttl(cs);
      assert.ok(ttl > 0 && ttl <= 86_400, `ttl ${ttl}`);
    } finally {
      closeAll(editors);
    }
  });

  test("the site answers 500, then stalls, then refuses connections, then recovers: the last version arrives, the server stays responsive", { timeout: 90_000 }, async () => {
    const cs = randomUUID();
    const editors = [await connectEditor(servers[0]!.url, token(cs), "r", "websocket"), await connectEditor(servers[1]!.url, token(cs), "s", "polling")];
    const stream = streamEdits(editors, 10_000);
    try {
      const phase = async (what: string, happened: () => boolean): Promise<void> => {
        const before = stream.confirmed();
        await site.waitFor(happened, 15_000, what);
        await withTimeout(stream.reach(before + 20), 15_000, `edits confirmed while ${what}`);
        // a new codespace can be opened meanwhile too
        const probe = await connectSocket(servers[1]!.url, `tmp-${randomUUID().slice(0, 8)}`);
        probe.socket.close();
      };
      site.mode = { status: 500 };
      await phase("the site answers 500", () => site.requests.filter((r) => r.codespace === cs && r.status === 500).length >= 2);
      site.mode = "stall";
      await phase("the site stalls", () => site.requests.filter((r) => r.codespace === cs && r.status === 0).length >= 2);
      // the retry line names what timed out (SAVE_TIMEOUT_MS is 500 here)
      await waitForOutput(() => servers.map((s) => s.output()).join(""), /"msg":"save failed; will retry"/, 5000);
      assert.match(servers.map((s) => s.output()).join(""), /no answer to the save within 500 ms \(SAVE_URL, or the site's save hook\)/);
      site.mode = "ok";
      await site.refuse();
      const refusedAt = stream.confirmed();
      await withTimeout(stream.reach(refusedAt + 40), 15_000, "edits confirmed while the site refuses connections");
      await site.resume();
      await stream.stop(20_000);
      await assertConverged(client, cs, editors);
      await assertSiteHasStored(cs);
      assertGrowing(cs);
      assert.deepEqual(site.requests.filter((r) => r.codespace.startsWith("tmp-")), [], "tmp- codespaces are never saved or loaded");
    } finally {
      site.mode = "ok";
      await stream.stop(20_000).catch(() => {});
      closeAll(editors);
    }
  });
});

test("TTL of 2 s, site down for 10 s: the key stays with the latest code; saved once the site is back, then it expires and the sockets get expired", { timeout: 90_000 }, async () => {
  const [server] = await processes(1, { CODESPACE_EXPIRE_UPDATE: "2" });
  const cs = randomUUID();
  let ed: Editor | undefined;
  let down = false;
  try {
    ed = await connectEditor(server!.url, token(cs), "t", "websocket");
    for (let i = 0; i < 5; i++) await editOnce(ed, 10_000);
    await site.refuse();
    down = true;
    const latest = await stored(client, cs);
    assert.equal(latest.code, ed.client.text);
    for (let s = 0; s < 10; s++) {
      await new Promise((r) => setTimeout(r, 1000)); // the scenario: the site stays down for 10 s
      assert.deepEqual(await stored(client, cs), latest, `after ${s + 1} s`);
    }
    assert.ok((await client.pttl(cs)) > 2000, "the TTL is held");
    const expired = new Promise<void>((resolve) => ed!.client.on("expired", () => resolve()));
    await site.resume();
    down = false;
    await assertSiteHasStored(cs);
    await withTimeout(expired, 15_000, "expired after the save");
    assert.equal(await client.exists(cs), 0);
  } finally {
    if (down) await site.resume();
    ed?.client.close();
    await server!.stop();
  }
});

test("the process holding the save claim is SIGKILLed mid-retry: the other process completes the save", { timeout: 90_000 }, async () => {
  const servers = await processes(2, { SAVE_RETRY_MAX_MS: "3000" });
  const cs = randomUUID();
  try {
    site.mode = { status: 500 };
    site.loadMode = "ok"; // only saves fail
    const ed = await connectEditor(servers[0]!.url, token(cs), "k", "websocket");
    for (let i = 0; i < 5; i++) await editOnce(ed, 10_000);
    ed.client.close();
    await site.waitFor(() => site.requests.filter((r) => r.codespace === cs && r.status === 500).length >= 3, 20_000, "three failed attempts");
    // the claim with a live lease (a retry pending): find its owner ("host/pid/random")
    let victim: ServerProcess | undefined;
    await withTimeout((async () => {
      for (;;) {
        const [owner, until] = await client.hmget(cs, "lease_owner", "lease_until");
        const pid = Number(owner?.split("/")[1]);
        victim = servers.find((s) => s.pid === pid);
        if (victim && Number(until) > Date.now() + 300) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    })(), 20_000, "a live save claim");
    await victim!.kill();
    const killedAt = Date.now();
    assert.equal((await victim!.exited).signal, "SIGKILL");
    site.mode = "ok";
    await assertSiteHasStored(cs);
    assert.ok(site.savesOf(cs).at(-1)!.at > killedAt);
    assertGrowing(cs);
  } finally {
    site.mode = "ok";
    site.loadMode = undefined;
    await Promise.all(servers.map((s) => s.stop()));
  }
});

test("the due-save index lost the codespace's entry (a failover of its master): the sweep lists it again and it is saved", { timeout: 60_000 }, async () => {
  // a 3 s debounce: nothing can be saved before the entry is removed; the sweep runs every SAVE_MAX_WAIT_MS
  const [srv] = await processes(1, { SAVE_DEBOUNCE_MS: "3000", SAVE_MAX_WAIT_MS: "3000" });
  const cs = randomUUID();
  const index = "codespace:saves"; // KEY_PREFIX is empty here
  try {
    const ed = await connectEditor(srv!.url, token(cs), "i", "websocket");
    await editOnce(ed, 10_000);
    ed.client.close();
    assert.notEqual(await client.zscore(index, cs), null, "the commit listed the codespace in the index");
    await client.zrem(index, cs);
    const removedAt = Date.now();
    assert.equal(await client.zscore(index, cs), null, "the entry is gone");
    assert.ok(await client.hexists(cs, "dirty_since"), "the codespace is still marked unsaved");
    assert.equal(site.savesOf(cs).length, 0, "nothing saved before the entry was removed");
    await assertSiteHasStored(cs);
    assert.ok(site.savesOf(cs).at(-1)!.at > removedAt);
  } finally {
    await srv!.stop();
  }
});

test("saves keep failing until the retention runs out: the codespace expires and one error line says its commits are lost", { timeout: 60_000 }, async () => {
  const [srv] = await processes(1, { CODESPACE_EXPIRE_UPDATE: "1", SAVE_MAX_RETENTION_S: "2" });
  const cs = randomUUID();
  try {
    site.mode = { status: 500 };
    site.loadMode = "ok"; // only saves fail
    const ed = await connectEditor(srv!.url, token(cs), "l", "websocket");
    await editOnce(ed, 10_000);
    ed.client.close();
    const [line] = await waitForOutput(srv!.output, /^.*those commits are lost.*$/m, 20_000);
    const entry = JSON.parse(line) as { level: number; codespace: string };
    assert.equal(entry.level, 50, "an error line");
    assert.equal(entry.codespace, cs);
    assert.equal(await client.exists(cs), 0, "the codespace is gone");
    assert.equal(site.savesOf(cs).length, 0, "the site never took it");
    assert.equal(srv!.output().split("those commits are lost").length - 1, 1, "one line");
  } finally {
    site.mode = "ok";
    site.loadMode = undefined;
    await srv!.stop();
  }
});

test("a server whose clock is 40 s behind Redis's saves on time (due times are Redis times)", { timeout: 60_000 }, async () => {
  const skew = join(REPO_ROOT, "test", "fixtures", "clock-skew.cjs");
  const [srv] = await processes(1, { NODE_OPTIONS: `--require ${skew}`, CLOCK_SKEW_MS: "-40000" });
  const cs = randomUUID();
  try {
    const ed = await connectEditor(srv!.url, token(cs), "k", "websocket");
    await editOnce(ed, 10_000);
    const editedAt = Date.now();
    ed.client.close();
    // SAVE_MAX_WAIT_MS is 1 s here: without the skew taken care of, the save would come ~40 s late
    await assertSiteHasStored(cs, 15_000);
    assert.ok(site.savesOf(cs).at(-1)!.at - editedAt < 15_000);
  } finally {
    await srv!.stop();
  }
});

test("SIGTERM with unsaved commits: saved before exit (the site is up)", { timeout: 60_000 }, async () => {
  const servers = await processes(2, { SAVE_DEBOUNCE_MS: "60000", SAVE_MAX_WAIT_MS: "60000" });
  const cs = randomUUID();
  try {
    const ed = await connectEditor(servers[0]!.url, token(cs), "u", "websocket");
    for (let i = 0; i < 5; i++) await editOnce(ed, 10_000);
    assert.equal(site.savesOf(cs).length, 0, "saved before the debounce");
    const status = await servers[0]!.stop("SIGTERM");
    ed.client.close();
    assert.equal(status.code, 0);
    // no waiting: it was saved before the process exited
    const want = await stored(client, cs);
    assert.deepEqual(site.savesOf(cs).map((s) => [s.version, s.code]), [[want.version, want.code]]);
    assert.match(servers[0]!.output(), /codespace saved/);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});

test("SIGTERM with unsaved commits while the site fails: the other process saves them; nothing lost", { timeout: 60_000 }, async () => {
  const servers = await processes(2);
  const cs = randomUUID();
  try {
    site.mode = { status: 503 };
    site.loadMode = "ok"; // only saves fail
    const ed = await connectEditor(servers[0]!.url, token(cs), "v", "websocket");
    for (let i = 0; i < 5; i++) await editOnce(ed, 10_000);
    const status = await servers[0]!.stop("SIGTERM");
    const exitedAt = Date.now();
    ed.client.close();
    assert.equal(status.code, 0);
    assert.equal(site.savesOf(cs).length, 0);
    site.mode = "ok";
    await assertSiteHasStored(cs);
    assert.ok(site.savesOf(cs).at(-1)!.at > exitedAt, "saved by the remaining process");
  } finally {
    site.mode = "ok";
    site.loadMode = undefined;
    await Promise.all(servers.map((s) => s.stop()));
  }
});

test("load before edit: a failed load refuses with codespace_unavailable and creates nothing; a working one starts from the site's code", { timeout: 60_000 }, async () => {
  const srv = await startInProcessServer(env({ SAVE_TIMEOUT_MS: "300" }));
  const cs = randomUUID();
  try {
    for (const mode of [{ status: 500 }, "stall"] as const) {
      site.loadMode = mode;
      const err = await expectConnectError(srv.url, token(cs), ["websocket"], { timeoutMs: 10_000 });
      assert.equal(err.data?.code, "codespace_unavailable", JSON.stringify(mode));
      assert.equal(await client.exists(cs), 0, "a key was created");
    }
    assert.equal(site.requests.filter((r) => r.codespace === cs && r.method === "PUT").length, 0, "something was saved");
    site.loadMode = undefined;
    site.docs.set(cs, { code: "print('from the site')\n", epoch: "old", version: 7 });
    const { socket, connected } = await connectSocket(srv.url, token(cs));
    socket.close();
    assert.equal(connected.code, "print('from the site')\n");
    assert.equal((await stored(client, cs)).code, connected.code);
    // 404: a new, empty codespace
    const fresh = randomUUID();
    const f = await connectSocket(srv.url, token(fresh));
    f.socket.close();
    assert.equal(f.connected.code, "");
    assert.equal(await client.hexists(cs, "dirty_since"), 0, "a loaded codespace is not unsaved");
    // a record the site wrote into Redis itself (name and code, no epoch) is adopted, not loaded
    const written = randomUUID();
    await client.hset(written, "name", "n", "code", "written by the site");
    site.loadMode = { status: 500 };
    const w = await connectSocket(srv.url, token(written));
    w.socket.close();
    assert.equal(w.connected.code, "written by the site");
    assert.equal(site.requests.filter((r) => r.codespace === written).length, 0, "the site was asked");
  } finally {
    site.loadMode = undefined;
    await srv.close();
  }
});
