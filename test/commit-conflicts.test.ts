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
import { Text } from "@codemirror/state";
import { Codespace } from "../server/codespace.js";
import { RedisStore } from "../server/store/redis-store.js";
import type { InsertValueBroadcast, InsertValuePayload } from "../protocol/events.js";
import { changesFromWire } from "../protocol/wire.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";

let redis: RedisServerHandle;
before(async () => (redis = await startRedis()));
after(async () => redis?.stop());

/** One "process": its own store connection and Codespace, the feed's broadcasts and its conflicts. */
async function process(id: string): Promise<{ store: RedisStore; cs: Codespace; seen: InsertValueBroadcast[]; conflicts: () => number; reached: (v: number) => Promise<void> }> {
  const store = await RedisStore.connect({ url: redis.url, keyPrefix: "conflict:", historyLength: 50 });
  const seen: InsertValueBroadcast[] = [];
  const waiters: { version: number; resolve: () => void }[] = [];
  let conflicts = 0;
  const cs = new Codespace(id, store, {
    historyLength: 50,
    maxDocLength: 10_000,
    ttlSeconds: 60,
    onCommitted: (updates) => {
      seen.push(...updates);
      const top = updates[updates.length - 1]!.version;
      for (const w of waiters.filter((w) => w.version <= top)) w.resolve();
    },
    onConflict: () => conflicts++,
  });
  const reached = (v: number): Promise<void> =>
    seen.some((u) => u.version >= v) ? Promise.resolve() : new Promise((resolve) => waiters.push({ version: v, resolve }));
  return { store, cs, seen, conflicts: () => conflicts, reached };
}

/** The text the broadcasts build from `start`, in version order. */
function replay(start: string, updates: readonly InsertValueBroadcast[]): string {
  let doc = Text.of(start.split("\n"));
  for (const u of [...updates].sort((a, b) => a.version - b.version)) doc = changesFromWire(u.changes, doc.length).apply(doc);
  return doc.toString();
}

test("two processes commit at the same version in one turn: one conflict, both applied once, code equals the feeds' text", async () => {
  const id = `tmp-conflict-${randomUUID()}`;
  const x = await process(id);
  const y = await process(id);
  try {
    const { epoch } = await x.cs.open();
    await y.cs.open();
    const insert = (clientID: string, version: number, at: number, text: string): InsertValuePayload => ({
      epoch,
      version,
      updates: [{ clientID, changes: [{ from: at, to: at, insert: text }] }],
    });
    // warm both caches: each commits once and has seen the other's commit
    assert.equal(await x.cs.submit(insert("x", 0, 0, "ab"), "sx"), 1);
    await y.reached(1);
    assert.equal(await y.cs.submit(insert("y", 1, 2, "cd"), "sy"), 2);
    await x.reached(2);
    assert.equal(x.conflicts() + y.conflicts(), 0, "sequential commits do not conflict");

    // the same base version, in the same turn: neither can have seen the other's commit
    const [vx, vy] = await Promise.all([x.cs.submit(insert("x", 2, 0, "X"), "sx"), y.cs.submit(insert("y", 2, 4, "Y"), "sy")]);
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
    await x.cs.dispose();
    await y.cs.dispose();
    await x.store.close();
    await y.store.close();
  }
});
