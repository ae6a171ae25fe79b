/**
 * One suite for both CodeStore implementations: MemoryStore and RedisStore on a real redis-server
 * (test/helpers/redis-server.ts; no mocks), and RedisStore on a real local Redis Cluster
 * (test/helpers/redis-cluster.ts; codespaces spread over its 3 masters). Redis-only checks (raw hash layout, PTTL, concurrency
 * across instances, restart and outage) follow in their own block.
 */
import type { TestContext } from "node:test";
import { test, describe, before, after } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { Text } from "@codemirror/state";
import type { CodeStore, CommitResult, Commit } from "../server/store/code-store.js";
import type { WireUpdate } from "../protocol/events.js";
import { MemoryStore } from "../server/store/memory-store.js";
import { RedisStore } from "../server/store/redis-store.js";
import { StoreUnavailableError } from "../server/errors.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startRedisCluster, type RedisClusterHandle } from "./helpers/redis-cluster.js";

const HISTORY = 5;
const PREFIX = "t[1]*:"; // glob characters exercise the PSUBSCRIBE escaping

/** What the shared suite needs beyond the CodeStore interface. */
interface Harness {
  store: CodeStore;
  /** Removes a codespace behind the store's back (Redis DEL / MemoryStore.delete). */
  remove(codespace: string): Promise<void>;
  /** Raw checks on the stored record; absent for MemoryStore. */
  raw?: {
    redis: Redis;
    key(codespace: string): string;
  };
}

const upd = (clientID: string, from: number, to: number, insert: string): WireUpdate => ({
  clientID,
  changes: [{ from, to, insert }],
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, fail]).finally(() => clearTimeout(timer));
}

/** Resolves when the store reports `codespace` expired/deleted. */
function expiredOnce(store: CodeStore, codespace: string): Promise<void> {
  return new Promise((resolve) => store.onExpired((cs) => cs === codespace && resolve()));
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Opens a fresh codespace and commits `n` single-character updates ("a", "b", ...). */
async function seeded(store: CodeStore, n: number): Promise<{ cs: string; epoch: string; updates: WireUpdate[] }> {
  const cs = randomUUID();
  const { epoch } = await store.open(cs, 60);
  const updates: WireUpdate[] = [];
  let code = "";
  for (let i = 0; i < n; i++) {
    const u = upd(`c${i}`, code.length, code.length, String.fromCharCode(97 + i));
    code += u.changes[0].insert;
    const r = await store.commit(cs, { epoch, baseVersion: i, code, updates: [u], ttlSeconds: 60 });
    assert.deepEqual(r, { status: "ok", version: i + 1 });
    updates.push(u);
  }
  return { cs, epoch, updates };
}

/** `withRaw`: the backend is reachable directly (Redis), so the site-API layout can be written by hand. */
function sharedSuite(name: string, withRaw: boolean, make: () => Promise<Harness>, dispose: (h: Harness) => Promise<void>): void {
  describe(name, () => {
    let h: Harness;
    before(async () => {
      h = await make();
    });
    after(async () => {
      await dispose(h);
    });

    test("open creates an empty codespace at version 0 with an epoch, idempotently", async () => {
      const cs = randomUUID();
      const a = await h.store.open(cs, 60);
      assert.equal(a.code, "");
      assert.equal(a.version, 0);
      assert.match(a.epoch, /^\d{15}-[0-9a-f-]{36}$/, "<time in ms, 15 digits>-<uuid> (server/store/epoch.ts)");
      assert.ok(Math.abs(Number(a.epoch.slice(0, 15)) - Date.now()) < 60_000, "the time part is the store's clock, in ms");
      assert.deepEqual(await h.store.open(cs, 60), a);
      assert.equal(h.store.isReady(), true);
    });

    test("epochs sort by creation: a codespace opened again after it was removed, and a restarted one, sort after the old epoch", async () => {
      const cs = randomUUID();
      const first = await h.store.open(cs, 60);
      await h.remove(cs);
      await new Promise((r) => setTimeout(r, 2)); // a later millisecond
      const second = await h.store.open(cs, 60);
      assert.ok(second.epoch > first.epoch, `${second.epoch} > ${first.epoch}`);
      await new Promise((r) => setTimeout(r, 2));
      const restarted = await h.store.restart(cs, second.epoch, randomUUID());
      assert.equal(restarted.status, "restarted");
      if (restarted.status !== "restarted") return;
      assert.ok(restarted.epoch > second.epoch, `${restarted.epoch} > ${second.epoch}`);
      assert.equal((await h.store.open(cs, 60)).epoch, restarted.epoch);
      assert.deepEqual(await h.store.restart(cs, second.epoch, randomUUID()), { status: "epoch", epoch: restarted.epoch }, "only from the epoch it names");
    });

    test("the commit feed delivers every commit, in order, with senders, until unwatch", async () => {
      const cs = randomUUID();
      const { epoch } = await h.store.open(cs, 60);
      const got: Commit[] = [];
      let arrived: () => void = () => {};
      await h.store.watch(cs, (c) => {
        got.push(c);
        arrived();
      });
      const u = (t: string) => ({ clientID: "a", changes: [{ from: 0, to: 0, insert: t }] });
      const twoArrived = new Promise<void>((r) => (arrived = () => got.length === 2 && r()));
      await h.store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [u("x")], senders: ["s1"], ttlSeconds: 60 });
      await h.store.commit(cs, { epoch, baseVersion: 1, code: "yzx", updates: [u("z"), u("y")], senders: ["s2", "s3"], ttlSeconds: 60 });
      await h.store.commit(cs, { epoch, baseVersion: 1, code: "lost", updates: [u("q")], ttlSeconds: 60 }); // conflict: not published
      await twoArrived;
      assert.deepEqual(got, [
        { epoch, baseVersion: 0, updates: [{ ...u("x"), sender: "s1" }] },
        { epoch, baseVersion: 1, updates: [{ ...u("z"), sender: "s2" }, { ...u("y"), sender: "s3" }] },
      ]);
      await h.store.unwatch(cs);
      // after unwatch nothing more arrives: a later watcher on another codespace proves the feed moved on
      const other = randomUUID();
      const o = await h.store.open(other, 60);
      let otherSeen: () => void = () => {};
      const otherArrived = new Promise<void>((r) => (otherSeen = r));
      await h.store.watch(other, () => otherSeen());
      await h.store.commit(cs, { epoch, baseVersion: 3, code: "w", updates: [u("w")], ttlSeconds: 60 });
      await h.store.commit(other, { epoch: o.epoch, baseVersion: 0, code: "o", updates: [u("o")], ttlSeconds: 60 });
      await otherArrived;
      assert.equal(got.length, 2);
      await h.store.unwatch(other);
    });

    test("load returns the state without creating anything", async () => {
      const cs = randomUUID();
      assert.equal(await h.store.load(cs), null);
      const snap = await h.store.open(cs, 60);
      assert.deepEqual(await h.store.load(cs), snap);
      await h.remove(cs);
      assert.equal(await h.store.load(cs), null);
      assert.equal(await h.store.load(cs), null);
    });

    if (withRaw) test("a hash written like the site API (name, code) is adopted and keeps its code", async () => {
      if (!h.raw) throw new Error("harness without raw access");
      const cs = randomUUID();
      await h.raw.redis.hset(h.raw.key(cs), "name", "x", "code", "hello");
      const snap = await h.store.open(cs, 60);
      assert.equal(snap.code, "hello");
      assert.equal(snap.version, 0);
      assert.ok(snap.epoch);
      assert.deepEqual(await h.store.open(cs, 60), snap);
      assert.equal(await h.raw.redis.hget(h.raw.key(cs), "name"), "x");
      // A site hash without a code field is adopted as empty.
      const cs2 = randomUUID();
      await h.raw.redis.hset(h.raw.key(cs2), "name", "y");
      assert.equal((await h.store.open(cs2, 60)).code, "");
    });

    test("commit advances the version and stores the full text", async () => {
      const cs = randomUUID();
      const { epoch } = await h.store.open(cs, 60);
      const r = await h.store.commit(cs, {
        epoch,
        baseVersion: 0,
        code: "hi!",
        updates: [upd("a", 0, 0, "hi"), upd("a", 2, 2, "!")],
        ttlSeconds: 60,
      });
      assert.deepEqual(r, { status: "ok", version: 2 });
      assert.deepEqual(await h.store.open(cs, 60), { epoch, version: 2, code: "hi!" });
      if (h.raw) {
        assert.equal(await h.raw.redis.hget(h.raw.key(cs), "code"), "hi!");
        assert.equal(await h.raw.redis.hget(h.raw.key(cs), "version"), "2");
      }
    });

    test("a conflict returns exactly the missing updates", async () => {
      const { cs, epoch, updates } = await seeded(h.store, 4);
      const r = await h.store.commit(cs, {
        epoch,
        baseVersion: 1,
        code: "zzz",
        updates: [upd("late", 0, 0, "z")],
        ttlSeconds: 60,
      });
      assert.deepEqual(r, { status: "conflict", version: 4, updates: updates.slice(1) });
      assert.deepEqual(await h.store.open(cs, 60), { epoch, version: 4, code: "abcd" });
    });

    test("a conflict beyond the history (or ahead of the store) returns a snapshot", async () => {
      const { cs, epoch } = await seeded(h.store, HISTORY + 2);
      const snapshot = { epoch, version: HISTORY + 2, code: "abcdefg" };
      const req = { epoch, code: "x", updates: [upd("late", 0, 0, "x")], ttlSeconds: 60 };
      const expected: CommitResult = { status: "conflict", version: HISTORY + 2, snapshot };
      assert.deepEqual(await h.store.commit(cs, { ...req, baseVersion: 1 }), expected);
      assert.deepEqual(await h.store.commit(cs, { ...req, baseVersion: HISTORY + 5 }), expected);
      // The oldest version history still reaches: 2 (updates 3..7 are kept).
      const ok = await h.store.commit(cs, { ...req, baseVersion: 2 });
      assert.equal(ok.status, "conflict");
      assert.equal("updates" in ok && ok.updates.length, HISTORY);
    });

    test("history returns updates, a snapshot, or an epoch mismatch", async () => {
      const { cs, epoch, updates } = await seeded(h.store, HISTORY + 1);
      assert.deepEqual(await h.store.history(cs, epoch, 3), {
        status: "updates",
        version: HISTORY + 1,
        updates: updates.slice(3),
      });
      assert.deepEqual(await h.store.history(cs, epoch, HISTORY + 1), {
        status: "updates",
        version: HISTORY + 1,
        updates: [],
      });
      assert.deepEqual(await h.store.history(cs, epoch, 0), {
        status: "snapshot",
        snapshot: { epoch, version: HISTORY + 1, code: "abcdef" },
      });
      assert.deepEqual(await h.store.history(cs, "other", 3), { status: "epoch", epoch });
      assert.deepEqual(await h.store.history(randomUUID(), epoch, 0), { status: "epoch", epoch: null });
    });

    test("a wrong epoch or a deleted codespace gives status epoch", async () => {
      const { cs, epoch } = await seeded(h.store, 1);
      const req = { baseVersion: 1, code: "ab", updates: [upd("x", 1, 1, "b")], ttlSeconds: 60 };
      assert.deepEqual(await h.store.commit(cs, { ...req, epoch: "stale" }), { status: "epoch", epoch });
      const gone = expiredOnce(h.store, cs);
      await h.remove(cs);
      await withTimeout(gone, 3000, "deletion notification");
      assert.deepEqual(await h.store.commit(cs, { ...req, epoch }), { status: "epoch", epoch: null });
      // Reopening creates a new incarnation.
      const again = await h.store.open(cs, 60);
      assert.notEqual(again.epoch, epoch);
      assert.equal(again.version, 0);
    });

    test("history is bounded", async () => {
      const { cs, epoch } = await seeded(h.store, 2 * HISTORY + 3);
      // One batch longer than the history window keeps only the window.
      const batch = Array.from({ length: HISTORY + 2 }, (_, i) => upd("b", i, i, "-"));
      const r = await h.store.commit(cs, {
        epoch,
        baseVersion: 2 * HISTORY + 3,
        code: "-".repeat(HISTORY + 2) + "abcdefghijklm",
        updates: batch,
        ttlSeconds: 60,
      });
      const version = 3 * HISTORY + 5;
      assert.deepEqual(r, { status: "ok", version });
      const hist = await h.store.history(cs, epoch, version - HISTORY);
      assert.deepEqual(hist, { status: "updates", version, updates: batch.slice(2) });
      assert.equal((await h.store.history(cs, epoch, version - HISTORY - 1)).status, "snapshot");
      if (h.raw) {
        const key = h.raw.key(cs);
        assert.equal(await h.raw.redis.hlen(key), 3 + HISTORY);
        const fields = (await h.raw.redis.hkeys(key)).filter((f) => f.startsWith("h:")).sort();
        const want = Array.from({ length: HISTORY }, (_, i) => `h:${version - HISTORY + 1 + i}`).sort();
        assert.deepEqual(fields, want);
      }
    });

    test("expiry with a 1-second TTL calls the listener; commit refreshes the TTL", async () => {
      const kept = randomUUID();
      const k = await h.store.open(kept, 1);
      if (h.raw) assert.ok((await h.raw.redis.pttl(h.raw.key(kept))) > 0);
      const refreshed = await h.store.commit(kept, {
        epoch: k.epoch,
        baseVersion: 0,
        code: "x",
        updates: [upd("a", 0, 0, "x")],
        ttlSeconds: 3600,
      });
      assert.equal(refreshed.status, "ok");
      if (h.raw) assert.ok((await h.raw.redis.pttl(h.raw.key(kept))) > 1000 * 3000);

      const cs = randomUUID();
      const expired = expiredOnce(h.store, cs);
      const { epoch } = await h.store.open(cs, 1);
      await withTimeout(expired, 5000, "expiry notification");
      assert.deepEqual(await h.store.history(cs, epoch, 0), { status: "epoch", epoch: null });
      // The committed codespace outlived its original 1 s TTL.
      assert.deepEqual(await h.store.open(kept, 60), { epoch: k.epoch, version: 1, code: "x" });
    });

    test("a commit with a shorter TTL than the codespace has expires it at the shorter TTL", async () => {
      const cs = randomUUID();
      const { epoch } = await h.store.open(cs, 3600);
      const expired = expiredOnce(h.store, cs);
      const r = await h.store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [upd("a", 0, 0, "x")], ttlSeconds: 1 });
      assert.equal(r.status, "ok");
      await withTimeout(expired, 5000, "expiry at the shorter TTL");
      assert.equal(await h.store.load(cs), null);
    });

    test("unicode text round-trips exactly", async () => {
      const cs = randomUUID();
      const { epoch } = await h.store.open(cs, 60);
      const text = "const s = \"😀 漢字 ü\";\r\n// 𝄞 end\r\n";
      const u = upd("ü😀", 0, 0, text);
      assert.deepEqual(
        await h.store.commit(cs, { epoch, baseVersion: 0, code: text, updates: [u], ttlSeconds: 60 }),
        { status: "ok", version: 1 },
      );
      assert.equal((await h.store.open(cs, 60)).code, text);
      assert.deepEqual(await h.store.history(cs, epoch, 0), { status: "updates", version: 1, updates: [u] });
      if (h.raw) assert.equal(await h.raw.redis.hget(h.raw.key(cs), "code"), text);
    });
  });
}

sharedSuite(
  "MemoryStore",
  false,
  async () => {
    const store = new MemoryStore({ historyLength: HISTORY });
    return { store, remove: async (cs) => store.delete(cs) };
  },
  async (h) => h.store.close(),
);

test("MemoryStore keeps the committer's Text: no string per commit, the same code when read", async () => {
  const store = new MemoryStore({ historyLength: HISTORY });
  try {
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    let built = 0;
    let doc = Text.of([""]);
    for (let v = 0; v < 20; v++) {
      const next = doc.replace(0, 0, Text.of([`${v}é😀`, ""]));
      const res = await store.commit(cs, {
        epoch,
        baseVersion: v,
        code: () => (built++, next.toString()),
        doc: () => next,
        updates: [upd("a", 0, 0, `${v}é😀\n`)],
        ttlSeconds: 60,
      });
      assert.deepEqual(res, { status: "ok", version: v + 1 });
      doc = next;
    }
    assert.equal(built, 0, "the store built the string on commit");
    assert.deepEqual(await store.load(cs), { epoch, version: 20, code: doc.toString() });
    assert.equal((JSON.parse(store.savedJson(cs)!) as { code: string }).code, doc.toString()); // what DATA_DIR writes
    // a commit passing only a string still works (and replaces the kept Text)
    assert.equal((await store.commit(cs, { epoch, baseVersion: 20, code: "x", updates: [upd("a", 0, doc.length, "x")], ttlSeconds: 60 })).status, "ok");
    assert.equal((await store.load(cs))?.code, "x");
  } finally {
    await store.close();
  }
});

let redis: RedisServerHandle;
const stores: RedisStore[] = [];
/** A RedisStore on the file's redis-server (or on `on`), closed after the file. */
async function redisStore(on: RedisServerHandle = redis): Promise<RedisStore> {
  const store = await RedisStore.connect({ url: on.url, keyPrefix: PREFIX, historyLength: HISTORY });
  stores.push(store);
  return store;
}

/** A redis-server of the test's own, for tests that restart or stop it; stopped after the test. */
async function ownRedis(t: TestContext): Promise<RedisServerHandle> {
  const own = await startRedis();
  t.after(() => own.stop());
  return own;
}

describe("RedisStore on redis-server", () => {
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await redis.stop();
  });

  sharedSuite(
    "shared suite",
    true,
    async () => {
      const store = await redisStore();
      const raw = redis.client();
      return {
        store,
        remove: async (cs) => void (await raw.del(PREFIX + cs)),
        raw: { redis: raw, key: (cs) => PREFIX + cs },
      };
    },
    async () => {},
  );

  test("start enabled keyspace notifications", async () => {
    await redis.client().config("SET", "notify-keyspace-events", "");
    await redisStore();
    const [, flags] = (await redis.client().config("GET", "notify-keyspace-events")) as string[];
    for (const f of ["K", "g", "x"]) assert.ok(flags.includes(f), `flags ${flags} lack ${f}`);
  });

  test("a burst of commits sets the TTL again about once a second, not once per commit (each is a keyspace event every process receives)", async () => {
    const store = await redisStore();
    const raw = redis.client();
    const cs = randomUUID();
    const key = PREFIX + cs;
    const { epoch } = await store.open(cs, 3600);
    await raw.pexpire(key, 3000_000); // well short of the TTL the commits ask: the first must set it
    const sub = raw.duplicate();
    const events: string[] = [];
    try {
      await sub.subscribe(`__keyspace@0__:${key}`);
      sub.on("message", (_channel: string, event: string) => events.push(event));
      const started = Date.now();
      let code = "";
      const n = 30;
      for (let i = 0; i < n; i++) {
        code = "x" + code;
        const r = await store.commit(cs, { epoch, baseVersion: i, code, updates: [upd(`c${i}`, 0, 0, "x")], ttlSeconds: 3600 });
        assert.equal(r.status, "ok");
      }
      const seconds = Math.ceil((Date.now() - started) / 1000);
      const left = await raw.pttl(key);
      assert.ok(left > 3600_000 - 1500 && left <= 3600_000, `TTL within a second of the one asked (${left} ms)`);
      // one more expire, by hand: once its event arrives, every event of the commits has (one
      // connection, in order)
      const before = events.length;
      const marker = new Promise<void>((resolve) => sub.on("message", () => events.length > before && resolve()));
      await raw.pexpire(key, 3600_000);
      await withTimeout(marker, 5000, "the marker's keyspace event");
      const expires = events.slice(0, before).filter((e) => e === "expire").length;
      assert.ok(expires >= 1, "the first commit set the TTL");
      assert.ok(expires <= seconds + 1, `${expires} expire events in ${seconds} s of ${n} commits`);
    } finally {
      sub.disconnect();
    }
  });

  test("a TTL the config accepts but too large for a Lua number printed as an integer (1e14 s) still commits, whole", async () => {
    // CODESPACE_EXPIRE_UPDATE is int().min(1): 100000000000000 s is valid. Lua prints 1e17 (ms) as
    // "1e+17", which PEXPIRE refuses; the script then fails after its HSET (Redis does not roll back).
    const store = await redisStore();
    const raw = redis.client();
    const cs = randomUUID();
    const ttl = 100_000_000_000_000;
    const { epoch } = await store.open(cs, ttl);
    await raw.pexpire(PREFIX + cs, 3000_000); // short of the TTL asked: the commit must set it
    const r = await store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [upd("c0", 0, 0, "x")], ttlSeconds: ttl });
    assert.equal(r.status, "ok");
    assert.equal(await raw.hget(PREFIX + cs, "code"), "x");
    assert.ok((await raw.pttl(PREFIX + cs)) > 3000_000_000, "the key got the TTL asked");
  });

  test("with the shortest TTL the config accepts (1 s), a codespace committed to without pause stays alive", async () => {
    // The TTL is set again only when it is "more than a second short": with a TTL of 1 s that never
    // happened, and the key expired 1 s after it was opened, however busy.
    const store = await redisStore();
    const raw = redis.client();
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 1);
    const started = Date.now();
    let code = "";
    let v = 0;
    while (Date.now() - started < 2500) {
      code = "x" + code;
      const r = await store.commit(cs, { epoch, baseVersion: v, code, updates: [upd(`c${v}`, 0, 0, "x")], ttlSeconds: 1 });
      assert.equal(r.status, "ok", `commit ${v + 1}, ${Date.now() - started} ms after the open`);
      v++;
    }
    assert.equal(await raw.hget(PREFIX + cs, "code"), code);
  });

  test("a patch commit is applied by the script itself, without sending the text, ASCII or not", async () => {
    const store = await redisStore();
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    const noText = () => {
      throw new Error("the text must not be needed");
    };
    await redis.client().hset(PREFIX + cs, "code", "é😀 hello world\r\n"); // é: 2 bytes, 😀: 4 bytes
    // "é😀 hello world\r\n" -> "é😀 Jello thère\r\n" (byte offsets: h at 7, world at 13..18)
    const u = { clientID: "a", changes: [{ from: 4, to: 5, insert: "J" }, { from: 10, to: 15, insert: "thère" }] };
    const patch = () => ({
      bytes: Buffer.byteLength("é😀 Jello thère\r\n"),
      changes: [
        { from: 7, to: 8, insert: "J", insertBytes: 1 },
        { from: 13, to: 18, insert: "thère", insertBytes: 6 },
      ],
    });
    const r = await store.commit(cs, { epoch, baseVersion: 0, code: noText, patch, updates: [u], ttlSeconds: 60 });
    assert.deepEqual(r, { status: "ok", version: 1 });
    assert.equal(await redis.client().hget(PREFIX + cs, "code"), "é😀 Jello thère\r\n");
  });

  test("a patch of up to tens of thousands of scattered changes is applied exactly (one concatenation, two levels, three)", async () => {
    // The script joins up to 180 pieces in one Lua expression and more in levels (redis-scripts.ts
    // JOIN_LUA); each count below takes another path: 1 range (3 pieces), 89 (179), 90 (181), 600
    // and 3,000 (two levels), -1: an insert at every character (about 110,000 ranges: three levels).
    // Ranges are insertions, deletions, replacements, adjacent ones (empty text between them) and
    // one long paste among them.
    const store = await redisStore();
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (const count of [0, 1, 89, 90, 600, 3000, -1]) {
      const cs = randomUUID();
      const { epoch } = await store.open(cs, 60);
      const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `line ${i} é中😀 ${"abc".repeat(random(30))}\n`).join(""));
      await redis.client().hset(PREFIX + cs, "code", text);
      // count 0: one insert at the start and one at the end (the stored text is kept whole around them)
      const picked =
        count === 0 ? [0, text.length] : count < 0 ? Array.from({ length: text.length }, (_, i) => i) : Array.from({ length: count }, () => random(text.length));
      const starts = [...new Set(picked)]
        .filter((b) => (text[b] & 0xc0) !== 0x80) // on character boundaries
        .sort((a, b) => a - b);
      const changes: { from: number; to: number; insert: string; insertBytes: number }[] = [];
      const out: Buffer[] = [];
      let pos = 0;
      for (const from of starts) {
        if (from < pos) continue;
        let to = from;
        const kind = count <= 0 ? 0 : random(4);
        if (kind === 1 || kind === 2) while (to < text.length && text[to] !== 0x0a && to - from < 5) to++; // deletes up to the newline
        while (to < text.length && (text[to] & 0xc0) === 0x80) to++; // ends on a character boundary
        const insert = kind === 1 ? "" : changes.length === 40 ? "ü".repeat(40_000) : ["x", "é", "😀", "中文"][random(4)];
        changes.push({ from, to, insert, insertBytes: Buffer.byteLength(insert) });
        out.push(text.subarray(pos, from), Buffer.from(insert));
        pos = to;
      }
      out.push(text.subarray(pos));
      const expected = Buffer.concat(out).toString();
      const patch = () => ({ bytes: Buffer.byteLength(expected), changes });
      const noText = () => {
        throw new Error("the text must not be needed");
      };
      const u = { clientID: "a", changes: [{ from: 0, to: 0, insert: "" }] };
      const r = await store.commit(cs, { epoch, baseVersion: 0, code: noText, patch, updates: [u], ttlSeconds: 60 });
      assert.deepEqual(r, { status: "ok", version: 1 }, `${changes.length} changes`);
      assert.equal(await redis.client().hget(PREFIX + cs, "code"), expected, `${changes.length} changes`);
    }
  });

  test("batches of thousands of updates keep exactly the history window (the script writes and deletes it 1,000 fields at a time)", async () => {
    const store = await RedisStore.connect({ url: redis.url, keyPrefix: PREFIX, historyLength: 3000 });
    stores.push(store);
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    const batch = (from: number) => Array.from({ length: 2500 }, (_, i) => upd(`c${from + i}`, 0, 0, "x"));
    const first = batch(0);
    const second = batch(2500);
    assert.deepEqual(await store.commit(cs, { epoch, baseVersion: 0, code: "x".repeat(2500), updates: first, ttlSeconds: 60 }), { status: "ok", version: 2500 });
    assert.deepEqual(await store.commit(cs, { epoch, baseVersion: 2500, code: "x".repeat(5000), updates: second, ttlSeconds: 60 }), { status: "ok", version: 5000 });
    const fields = (await redis.client().hkeys(PREFIX + cs)).filter((f) => f.startsWith("h:"));
    assert.deepEqual(fields.map((f) => Number(f.slice(2))).sort((a, b) => a - b), Array.from({ length: 3000 }, (_, i) => 2001 + i));
    assert.deepEqual(await store.history(cs, epoch, 2000), { status: "updates", version: 5000, updates: [...first.slice(2000), ...second] });
    assert.equal((await store.history(cs, epoch, 1999)).status, "snapshot");
  });

  test("a patch that does not fit the stored text falls back to writing the text", async () => {
    const store = await redisStore();
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    await redis.client().hset(PREFIX + cs, "code", "xyz"); // the stored text is not what the caller believes
    const u = { clientID: "a", changes: [{ from: 0, to: 0, insert: "ab" }] };
    const patch = () => ({ bytes: 2, changes: [{ from: 0, to: 0, insert: "ab", insertBytes: 2 }] });
    const r = await store.commit(cs, { epoch, baseVersion: 0, code: () => "ab", patch, updates: [u], ttlSeconds: 60 });
    assert.deepEqual(r, { status: "ok", version: 1 });
    assert.equal(await redis.client().hget(PREFIX + cs, "code"), "ab");
  });

  test("two instances committing at the same base: exactly one wins", async () => {
    const [a, b] = [await redisStore(), await redisStore()];
    for (let round = 0; round < 20; round++) {
      const cs = randomUUID();
      const { epoch } = await a.open(cs, 60);
      const ua = upd("A", 0, 0, "a");
      const ub = upd("B", 0, 0, "b");
      const [ra, rb] = await Promise.all([
        a.commit(cs, { epoch, baseVersion: 0, code: "a", updates: [ua], ttlSeconds: 60 }),
        b.commit(cs, { epoch, baseVersion: 0, code: "b", updates: [ub], ttlSeconds: 60 }),
      ]);
      const results = [ra, rb].map((r) => r.status).sort();
      assert.deepEqual(results, ["conflict", "ok"]);
      const winner = ra.status === "ok" ? ua : ub;
      const loser = ra.status === "ok" ? rb : ra;
      assert.deepEqual(loser, { status: "conflict", version: 1, updates: [winner] });
    }
  });

  test("recovers after a redis restart, and expiry notifications still arrive", async (t) => {
    const own = await ownRedis(t);
    const store = await redisStore(own);
    await own.restart(); // data is lost: no persistence
    let committed = false;
    for (let attempt = 0; attempt < 100 && !committed; attempt++) {
      try {
        const cs = randomUUID();
        const { epoch } = await store.open(cs, 60);
        const r = await store.commit(cs, { epoch, baseVersion: 0, code: "x", updates: [upd("a", 0, 0, "x")], ttlSeconds: 60 });
        committed = r.status === "ok";
      } catch (err) {
        assert.ok(err instanceof StoreUnavailableError, `unexpected ${String(err)}`);
        await delay(100);
      }
    }
    assert.ok(committed, "no commit succeeded after the restart");
    for (let attempt = 0; attempt < 100 && !store.isReady(); attempt++) await delay(50);
    assert.equal(store.isReady(), true);

    const cs = randomUUID();
    const expired = expiredOnce(store, cs);
    await store.open(cs, 1);
    await withTimeout(expired, 5000, "expiry notification after restart");
  });

  test("while redis hangs, commit rejects with StoreUnavailableError (command timeout), then recovers", async () => {
    const store = await redisStore();
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    await redis.client().call("CLIENT", "PAUSE", "1500", "ALL");
    const req = { epoch, baseVersion: 0, code: "x", updates: [upd("a", 0, 0, "x")], ttlSeconds: 60 };
    await withTimeout(assert.rejects(store.commit(cs, req), StoreUnavailableError), 2000, "commit while paused");
    let result: CommitResult | undefined;
    for (let attempt = 0; attempt < 50 && !result; attempt++) {
      result = await store.commit(cs, req).catch(() => undefined);
    }
    // The timed-out commit may still have been applied once Redis resumed: then the retry conflicts.
    assert.ok(result && (result.status === "ok" || result.status === "conflict"), JSON.stringify(result));
  });

  test("while redis is down, commit rejects with StoreUnavailableError quickly", async (t) => {
    const own = await ownRedis(t);
    const store = await redisStore(own);
    const cs = randomUUID();
    const { epoch } = await store.open(cs, 60);
    await own.stop();
    const req = { epoch, baseVersion: 0, code: "x", updates: [upd("a", 0, 0, "x")], ttlSeconds: 60 };
    for (let i = 0; i < 3; i++) {
      await withTimeout(
        assert.rejects(store.commit(cs, req), StoreUnavailableError),
        2000,
        "commit while redis is down",
      );
    }
    assert.equal(store.isReady(), false);
  });
});

describe("RedisStore when CONFIG is refused", () => {
  test("logs one warning and still serves requests", async () => {
    const server = await startRedis({ args: ["--rename-command", "CONFIG", ""] });
    const warnings: string[] = [];
    const store = await RedisStore.connect({
      url: server.url,
      keyPrefix: "",
      historyLength: HISTORY,
      logger: { warn: (_obj, msg) => void warnings.push(msg) },
    });
    try {
      assert.equal(warnings.length, 1);
      assert.equal((await store.open("x", 60)).version, 0);
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

describe("RedisStore on a Redis Cluster (3 masters, 3 replicas)", () => {
  let cluster: RedisClusterHandle;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  sharedSuite(
    "shared suite",
    true,
    async () => {
      const store = await RedisStore.connect({ clusterNodes: cluster.seedNodes(), keyPrefix: PREFIX, historyLength: HISTORY });
      const raw = cluster.clusterClient();
      return {
        store,
        remove: async (cs) => void (await raw.del(PREFIX + cs)),
        raw: { redis: raw as unknown as Redis, key: (cs) => PREFIX + cs },
      };
    },
    async (h) => h.store.close(),
  );
});
