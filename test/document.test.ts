/** Document-level pieces of the accept path: the one-pass apply, the batch change cap, the rebase work cap. */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ChangeSet } from "@codemirror/state";
import { applyChanges } from "../server/document/changes.js";
import { LINE_SEPARATOR } from "../protocol/wire.js";
import { textOf } from "../server/document/doc-cache.js";
import { checkInsertValue } from "../server/protocol/validate.js";
import { Codespace } from "../server/codespace.js";
import { MemoryStore } from "../server/store/memory-store.js";
import type { CodespaceError } from "../server/errors.js";

test("applyChanges equals ChangeSet.apply, on both of its paths (few and many changes)", () => {
  const doc = fc.string({ unit: fc.constantFrom("a", "b", "\n", "\r", "é"), maxLength: 200 });
  fc.assert(
    fc.property(doc, fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.constantFrom("", "x", "\n", "yz\r\n")), { maxLength: 60 }), (text, raw) => {
      const d = textOf(text);
      const specs: { from: number; to: number; insert: string }[] = [];
      let pos = 0;
      for (const [skip, del, insert] of raw) {
        const from = Math.min(text.length, pos + (skip % 7));
        const to = Math.min(text.length, from + del);
        if (from === to && insert === "") continue;
        specs.push({ from, to, insert });
        pos = to;
        if (pos >= text.length) break;
      }
      const cs = ChangeSet.of(specs, text.length, LINE_SEPARATOR);
      assert.equal(applyChanges(d, cs).sliceString(0, undefined, LINE_SEPARATOR), cs.apply(d).sliceString(0, undefined, LINE_SEPARATOR));
    }),
    { numRuns: 500 },
  );
});

test("a batch with more changes in all than maxChangesPerBatch is refused", () => {
  const limits = { maxDocLength: 100, maxUpdatesPerBatch: 10, maxChangesPerUpdate: 3, maxChangesPerBatch: 5, maxSelections: 1 };
  const update = { clientID: "a", changes: [{ from: 0, to: 0, insert: "x" }, { from: 1, to: 1, insert: "y" }, { from: 2, to: 2, insert: "z" }] };
  assert.doesNotThrow(() => checkInsertValue({ epoch: "e", version: 0, updates: [update] }, limits));
  assert.throws(
    () => checkInsertValue({ epoch: "e", version: 0, updates: [update, update] }, limits),
    (e: CodespaceError) => e.code === "invalid_payload" && /at most 5 changes/.test(e.message),
  );
});

test("a batch too far behind to rebase within maxRebaseWork is refused with invalid_version; at the new version it is accepted", async () => {
  const store = new MemoryStore({ historyLength: 100 });
  const cs = new Codespace("tmp-work", store, { historyLength: 100, maxDocLength: 10_000, maxRebaseWork: 40, ttlSeconds: 60, onCommitted: () => {} });
  const { epoch } = await cs.open();
  const insert = (clientID: string, at: number) => ({ clientID, changes: [{ from: at, to: at, insert: "ab" }] });
  for (let v = 0; v < 10; v++) await cs.submit({ epoch, version: v, updates: [insert("a", 0)] }, "sa");
  const five = { clientID: "b", changes: [0, 1, 2, 3, 4].map(() => ({ from: 0, to: 0, insert: "." })) };
  // 10 accepted changes since version 0 × 5 changes = 50 > 40
  await assert.rejects(cs.submit({ epoch, version: 0, updates: [five] }, "sb"), (e: CodespaceError) => e.code === "invalid_version" && /pull/.test(e.message));
  // 2 × 5 = 10 is fine, and so is the same batch at the current version (no rebasing)
  assert.equal(await cs.submit({ epoch, version: 8, updates: [five] }, "sb"), 11);
  assert.equal((await store.load("tmp-work"))!.version, 11);
  await store.close();
});

test("surrogate pairs are protected whether they come from the snapshot, an earlier commit, the same batch or another process's commit (the composed fast path is only for documents without them)", async () => {
  const store = new MemoryStore({ historyLength: 100 });
  const cs = new Codespace("tmp-sur", store, { historyLength: 100, maxDocLength: 10_000, ttlSeconds: 60, onCommitted: () => {} });
  const { epoch } = await cs.open();
  const up = (insert: string, from: number, to = from) => ({ clientID: "a", changes: [{ from, to, insert }] });
  const splits = (e: CodespaceError) => e.code === "invalid_payload" && /surrogate pair/.test(e.message);
  // ASCII so far: the fast path; a batch inserting "😀" then splitting it is refused whole
  assert.equal(await cs.submit({ epoch, version: 0, updates: [up("abc", 0), up("def", 3)] }, "s"), 2);
  await assert.rejects(cs.submit({ epoch, version: 2, updates: [up("😀", 1), up("x", 2)] }, "s"), splits);
  assert.equal((await store.load("tmp-sur"))!.code, "abcdef", "nothing of the refused batch applied");
  // an earlier commit brought one: a later batch of plain text cannot split it
  assert.equal(await cs.submit({ epoch, version: 2, updates: [up("😀", 1)] }, "s"), 3);
  await assert.rejects(cs.submit({ epoch, version: 3, updates: [up("y", 0), up("z", 3)] }, "s"), splits);
  assert.equal(await cs.submit({ epoch, version: 3, updates: [up("y", 0), up("z", 4)] }, "s"), 5);
  assert.equal((await store.load("tmp-sur"))!.code, "ya😀zbcdef");
  await store.close();

  // a snapshot that holds one (a fresh cache in another codespace object, as another process)
  const store2 = new MemoryStore({ historyLength: 100 });
  const writer = new Codespace("tmp-sur2", store2, { historyLength: 100, maxDocLength: 10_000, ttlSeconds: 60, onCommitted: () => {} });
  const e2 = (await writer.open()).epoch;
  assert.equal(await writer.submit({ epoch: e2, version: 0, updates: [up("a😀b", 0)] }, "s"), 1);
  const other = new Codespace("tmp-sur2", store2, { historyLength: 100, maxDocLength: 10_000, ttlSeconds: 60, onCommitted: () => {} });
  await other.open();
  await assert.rejects(other.submit({ epoch: e2, version: 1, updates: [up("q", 2)] }, "s"), splits);
  // a commit of the other one, received by the writer's cache through the feed (catchUp)
  assert.equal(await other.submit({ epoch: e2, version: 1, updates: [up("😀", 0)] }, "s"), 2);
  await writer.idle();
  await assert.rejects(writer.submit({ epoch: e2, version: 2, updates: [up("q", 1)] }, "s"), splits);
  assert.equal((await store2.load("tmp-sur2"))!.code, "😀a😀b");
  await store2.close();
});
