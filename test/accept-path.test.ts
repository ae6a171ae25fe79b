/**
 * The accept path on its own (Codespace + MemoryStore, no network), driven by real
 * @codemirror/collab client states: random concurrent edits, random delivery order and lost acks
 * with resends. Every client and the store must converge; nothing is applied twice or lost; a
 * genuine resend is never refused.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ChangeSet, EditorState } from "@codemirror/state";
import { collab, getSyncedVersion, sendableUpdates } from "@codemirror/collab";
import { receiveServerUpdates } from "../client/collab-state.js";
import { Codespace } from "../server/codespace.js";
import { MemoryStore } from "../server/store/memory-store.js";
import { CodespaceError } from "../server/errors.js";
import type { InsertValueBroadcast, InsertValuePayload } from "../protocol/events.js";
import { changesToWire } from "../protocol/wire.js";

interface Peer {
  state: EditorState;
  clientID: string;
  inbox: InsertValueBroadcast[];
}

function newPeer(clientID: string, code: string, version: number): Peer {
  const state = EditorState.create({
    doc: code,
    extensions: [EditorState.lineSeparator.of("\n"), collab({ clientID, startVersion: version })],
  });
  return { state, clientID, inbox: [] };
}

function deliver(peer: Peer, upTo: number): void {
  peer.inbox.sort((a, b) => a.version - b.version);
  const run = [];
  let v = getSyncedVersion(peer.state);
  // receiveUpdates takes ChangeSets over the authority's document, whose length we track per peer
  let authorityLength = authorityLengths.get(peer)!;
  while (peer.inbox.length && peer.inbox[0]!.version <= v) peer.inbox.shift();
  while (peer.inbox.length && peer.inbox[0]!.version === v + 1 && v < upTo) {
    const u = peer.inbox.shift()!;
    const changes = ChangeSet.of(u.changes, authorityLength, "\n");
    authorityLength = changes.newLength;
    run.push({ changes, clientID: u.clientID });
    v++;
  }
  authorityLengths.set(peer, authorityLength);
  // one at a time, as the reference client does and the protocol requires (rule 5)
  if (run.length) peer.state = receiveServerUpdates(peer.state, run).state;
}
const authorityLengths = new WeakMap<Peer, number>();

function batchOf(peer: Peer, epoch: string): InsertValuePayload | null {
  const updates = sendableUpdates(peer.state);
  if (!updates.length) return null;
  return {
    epoch,
    version: getSyncedVersion(peer.state),
    updates: updates.map((u) => ({ clientID: u.clientID, changes: changesToWire(u.changes) })),
  };
}

const edit = fc.record({ peer: fc.nat(2), pos: fc.double({ min: 0, max: 1, noNaN: true }), del: fc.nat(3), text: fc.constantFrom("a", "bc", "\n", "😀", "\r\n", "") });
const step = fc.oneof(
  { weight: 5, arbitrary: edit.map((e) => ({ kind: "edit" as const, ...e })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("push" as const), peer: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("deliver" as const), peer: fc.nat(2), upTo: fc.nat(6) }) },
);

test("random concurrent edits with lost acks and resends converge, nothing doubled or lost", async () => {
  // Over all runs, the scenarios the name promises must have happened: batches pushed behind
  // others' accepted updates (rebased) and batches pushed again before their updates were
  // delivered back (resends after a lost ack, deduplicated).
  let rebased = 0;
  let resent = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
      const store = new MemoryStore({ historyLength: 1000 });
      const accepted: InsertValueBroadcast[] = [];
      const peers: Peer[] = [];
      const cs = new Codespace("tmp-prop", store, {
        historyLength: 1000,
        maxDocLength: 100_000,
        ttlSeconds: 60,
        onCommitted: (us) => {
          accepted.push(...us);
          for (const p of peers) p.inbox.push(...us);
        },
      });
      const snap = await cs.open();
      for (const id of ["c0", "c1", "c2"]) {
        const p = newPeer(id, snap.code, snap.version);
        authorityLengths.set(p, 0);
        peers.push(p);
      }
      for (const s of steps) {
        const peer = peers[s.peer]!;
        if (s.kind === "edit") {
          const len = peer.state.doc.length;
          let from = Math.floor(s.pos * len);
          const to = Math.min(len, from + s.del);
          const text = peer.state.sliceDoc(0, len);
          // keep positions off the middle of a surrogate pair
          const isLow = (i: number) => i > 0 && i < len && /[\udc00-\udfff]/.test(text[i]!);
          if (isLow(from)) from--;
          const end = isLow(to) ? to + 1 : to;
          if (from === end && s.text === "") continue;
          peer.state = peer.state.update({ changes: { from, to: end, insert: s.text } }).state;
        } else if (s.kind === "push") {
          const batch = batchOf(peer, snap.epoch);
          if (!batch) continue;
          // pushing again before delivery is a resend after a lost ack: it must never be refused
          const since = accepted.filter((a) => a.version > batch.version);
          const own = since.filter((a) => a.clientID === peer.clientID).length; // in the batch again
          const version = await cs.submit(batch, peer.clientID);
          assert.ok(version >= batch.version);
          if (own > 0) resent++;
          if (since.length > own) rebased++;
        } else {
          deliver(peer, getSyncedVersion(peer.state) + s.upTo);
        }
      }
      // settle: everyone pushes what is left and receives everything
      for (let round = 0; round < 10; round++) {
        for (const p of peers) {
          deliver(p, Infinity);
          const batch = batchOf(p, snap.epoch);
          if (batch) await cs.submit(batch, p.clientID);
        }
      }
      for (const p of peers) deliver(p, Infinity);
      const final = await store.open("tmp-prop", 60);
      for (const p of peers) {
        assert.equal(sendableUpdates(p.state).length, 0);
        assert.equal(p.state.doc.toString(), final.code);
        assert.equal(getSyncedVersion(p.state), final.version);
      }
      assert.equal(accepted.length, final.version);
      await store.close();
    }),
    { numRuns: 150 },
  );
  assert.ok(rebased > 0, "no batch was rebased over another peer's updates");
  assert.ok(resent > 0, "no batch was resent after a lost ack");
});

test("a later update sent alone at an old version while the first is unconfirmed is refused, not dropped", async () => {
  const store = new MemoryStore({ historyLength: 100 });
  const cs = new Codespace("tmp-rule", store, { historyLength: 100, maxDocLength: 1000, ttlSeconds: 60, onCommitted: () => {} });
  const { epoch } = await cs.open();
  const first = { clientID: "a", changes: [{ from: 0, to: 0, insert: "one " }] };
  const second = { clientID: "a", changes: [{ from: 0, to: 0, insert: "two " }] };
  assert.equal(await cs.submit({ epoch, version: 0, updates: [first] }, "s"), 1);
  // resend of the first after a lost ack: deduplicated, applied once
  assert.equal(await cs.submit({ epoch, version: 0, updates: [first] }, "s"), 1);
  // the second alone at version 0 breaks the protocol: it must be refused, not skipped as a resend
  await assert.rejects(cs.submit({ epoch, version: 0, updates: [second] }, "s"), (e: CodespaceError) => e.code === "invalid_version");
  // the right way: both unconfirmed updates at version 0
  assert.equal(await cs.submit({ epoch, version: 0, updates: [first, second] }, "s"), 2);
  assert.equal((await store.open("tmp-rule", 60)).code, "two one ");
  await store.close();
});

test("an own update that rebasing made empty may be left out of a later batch (the client dropped the no-op)", async () => {
  const store = new MemoryStore({ historyLength: 100 });
  const cs = new Codespace("tmp-noop", store, { historyLength: 100, maxDocLength: 1000, ttlSeconds: 60, onCommitted: () => {} });
  const { epoch } = await cs.open();
  await cs.submit({ epoch, version: 0, updates: [{ clientID: "x", changes: [{ from: 0, to: 0, insert: "abc" }] }] }, "sx");
  await cs.submit({ epoch, version: 1, updates: [{ clientID: "b", changes: [{ from: 0, to: 3, insert: "" }] }] }, "sb");
  // a's delete of "b", based on version 1, lands after b's delete of everything: stored empty
  assert.equal(await cs.submit({ epoch, version: 1, updates: [{ clientID: "a", changes: [{ from: 1, to: 2, insert: "" }] }] }, "sa"), 3);
  assert.deepEqual((await cs.pull(epoch, 2)), { version: 3, updates: [{ version: 3, clientID: "a", changes: [] }] });
  // a saw version 2 only, dropped its now-empty update, and sends its next one alone at version 2
  assert.equal(await cs.submit({ epoch, version: 2, updates: [{ clientID: "a", changes: [{ from: 0, to: 0, insert: "X" }] }] }, "sa"), 4);
  assert.equal((await store.open("tmp-noop", 60)).code, "X");
  // but a non-empty accepted update can never be left out that way
  await assert.rejects(
    cs.submit({ epoch, version: 0, updates: [{ clientID: "x", changes: [{ from: 0, to: 0, insert: "Y" }] }] }, "sx"),
    (e: CodespaceError) => e.code === "invalid_version",
  );
  await store.close();
});

test("an edit to a codespace that expired is refused and does not recreate it", async () => {
  const store = new MemoryStore({ historyLength: 100 });
  const cs = new Codespace("tmp-gone", store, { historyLength: 100, maxDocLength: 1000, ttlSeconds: 60, onCommitted: () => {} });
  const { epoch } = await cs.open();
  const update = { clientID: "a", changes: [{ from: 0, to: 0, insert: "hi" }] };
  assert.equal(await cs.submit({ epoch, version: 0, updates: [update] }, "s"), 1);
  store.delete("tmp-gone"); // as an expiry would, before any notification reached the codespace
  await assert.rejects(cs.submit({ epoch, version: 1, updates: [update] }, "s"), (e: CodespaceError) => e.code === "invalid_version");
  cs.invalidate(); // the notification arrives: the cache is dropped
  await assert.rejects(cs.submit({ epoch, version: 1, updates: [update] }, "s"), (e: CodespaceError) => e.code === "invalid_version");
  assert.equal(await store.load("tmp-gone"), null);
  await store.close();
});

test("mapping is not composition-consistent at insertion ties: the server and the reference client both map one update at a time", async () => {
  // U, R1, R2 found by a fast-check search: U.map(R1).map(R2) differs from U.map(R1.compose(R2))
  const U = ChangeSet.fromJSON([[2, "a"], [0, "bca"]]);
  const R1 = ChangeSet.fromJSON([[1, "bc"], [1, "bc"], [0, "a"]]);
  const R2 = ChangeSet.fromJSON([[0, "bcbc"], 2, [0, "bc"], 1, [1], 1]);
  assert.notDeepEqual(U.map(R1).map(R2).toJSON(), U.map(R1.compose(R2)).toJSON());

  const store = new MemoryStore({ historyLength: 100 });
  const broadcasts: InsertValueBroadcast[] = [];
  const cs = new Codespace("tmp-ties", store, { historyLength: 100, maxDocLength: 1000, ttlSeconds: 60, onCommitted: (us) => broadcasts.push(...us) });
  const { epoch } = await cs.open();
  await cs.submit({ epoch, version: 0, updates: [{ clientID: "x", changes: [{ from: 0, to: 0, insert: "xy" }] }] }, "sx");
  await cs.submit({ epoch, version: 1, updates: [{ clientID: "r", changes: changesToWire(R1) }] }, "sr");
  await cs.submit({ epoch, version: 2, updates: [{ clientID: "r", changes: changesToWire(R2) }] }, "sr");
  const peer = EditorState.create({ doc: "xy", extensions: [EditorState.lineSeparator.of("\n"), collab({ clientID: "u", startVersion: 1 })] });
  const typed = peer.update({ changes: U }).state;
  await cs.submit({ epoch, version: 1, updates: [{ clientID: "u", changes: changesToWire(U) }] }, "su");
  const stored = (await store.load("tmp-ties"))!.code;
  let length = 2;
  const remote = broadcasts.slice(1).map((b) => {
    const changes = ChangeSet.of(b.changes, length, "\n");
    length = changes.newLength;
    return { changes, clientID: b.clientID };
  });
  // one at a time: the peer ends on the stored text with nothing unconfirmed
  const one = receiveServerUpdates(typed, remote).state;
  assert.equal(sendableUpdates(one).length, 0);
  assert.equal(one.doc.toString(), stored);
  await store.close();
});
