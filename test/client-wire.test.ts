/**
 * Client unit tests that need no server: wire <-> ChangeSet conversions, the version-ordering
 * buffer, and the headless collab state (line separator, compaction).
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { ChangeSet, Text } from "@codemirror/state";
import { sendableUpdates } from "@codemirror/collab";
import { canonicalChanges, changesFromWire, changesToWire, isCanonical, updatesFromWire, wireProblem } from "../protocol/wire.js";
import { UpdateBuffer } from "../client/update-buffer.js";
import { compactUnconfirmed, createCollabState } from "../client/collab-state.js";
import type { WireChange } from "../protocol/events.js";
import { applyWire } from "./helpers/wire.js";

const doc = (s: string) => createCollabState(s, 0).doc;

test("wire -> ChangeSet -> wire round trip keeps \\r\\n, emoji and several changes", () => {
  const base = "a\r\nb😀c\r\n\r\nend";
  const changes: WireChange[] = [
    { from: 0, to: 1, insert: "A\r\n" },
    { from: 3, to: 4, insert: "" },
    { from: 6, to: 7, insert: "👍🏽\r" }, // replaces "c"
    { from: 8, to: 8, insert: "\n\r\n" }, // between "\r" and "\n"
    { from: base.length, to: base.length, insert: "\r" },
  ];
  const set = changesFromWire(changes, base.length);
  assert.deepEqual(changesToWire(set), changes);
  const expected = applyWire(base, changes);
  assert.equal(set.apply(doc(base)).toString(), expected);
  assert.equal(set.newLength, expected.length);
});

test("adjacent wire changes come back merged but apply identically", () => {
  const base = "ab\r\ncd";
  const changes: WireChange[] = [
    { from: 1, to: 2, insert: "" },
    { from: 2, to: 4, insert: "\n" },
  ];
  const wire = changesToWire(changesFromWire(changes, base.length));
  assert.deepEqual(wire, [{ from: 1, to: 4, insert: "\n" }]);
  assert.equal(applyWire(base, wire), applyWire(base, changes));
});

test("ChangeSet -> wire merges nothing it should not and omits unchanged text", () => {
  const base = "hello\r\nworld";
  const set = ChangeSet.of(
    [
      { from: 5, to: 7, insert: "\n" },
      { from: 0, insert: "¡" },
    ],
    base.length,
    "\n",
  );
  const wire = changesToWire(set);
  assert.deepEqual(wire, [
    { from: 0, to: 0, insert: "¡" },
    { from: 5, to: 7, insert: "\n" },
  ]);
  assert.equal(applyWire(base, wire), set.apply(doc(base)).toString());
});

test("the state keeps \\r as an ordinary character (text equals the server's byte for byte)", () => {
  const text = "x\r\ny\rz\n";
  const state = createCollabState(text, 3);
  assert.equal(state.doc.toString(), text);
  assert.equal(state.doc.length, text.length);
  const next = state.update({ changes: ChangeSet.of([{ from: 1, to: 2, insert: "\r\n\r" }], text.length, "\n") }).state;
  assert.equal(next.doc.toString(), "x\r\n\r\ny\rz\n");
});

test("updatesFromWire builds each update against the doc after the previous ones", () => {
  const start = doc("ab");
  const { updates, doc: end } = updatesFromWire(
    [
      { version: 1, clientID: "x", changes: [{ from: 2, to: 2, insert: "cdef" }] }, // length 2 -> 6
      { version: 2, clientID: "y", changes: [{ from: 5, to: 6, insert: "F😀" }] }, // needs length 6
      { version: 3, clientID: "x", changes: [{ from: 0, to: 1, insert: "" }] },
    ],
    start,
  );
  assert.deepEqual(
    updates.map((u) => [u.clientID, u.changes.length, u.changes.newLength]),
    [
      ["x", 2, 6],
      ["y", 6, 8],
      ["x", 8, 7],
    ],
  );
  assert.equal(end.toString(), "bcdeF😀");
  assert.throws(() => updatesFromWire([{ clientID: "x", changes: [{ from: 3, to: 3, insert: "!" }] }], start), RangeError);
});

test("random wire round trips (seeded)", () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ["a", "\r", "\n", "\r\n", "😀", "é", "xyz", ""];
  for (let round = 0; round < 300; round++) {
    let base = "";
    for (let i = rand(12); i > 0; i--) base += pieces[rand(pieces.length)];
    const changes: WireChange[] = [];
    let pos = 0;
    while (pos <= base.length && rand(3) > 0) {
      const from = pos + rand(base.length - pos + 1);
      const to = from + rand(base.length - from + 1);
      const insert = pieces[rand(pieces.length)]!;
      if (from !== to || insert !== "") changes.push({ from, to, insert });
      pos = to + 1; // keep changes separated so the wire form is canonical
    }
    const set = changesFromWire(changes, base.length);
    assert.deepEqual(changesToWire(set), changes);
    assert.equal(set.apply(doc(base)).toString(), applyWire(base, changes));
  }
});

test("wireProblem flags surrogate splits and lone surrogates", () => {
  const d = doc("a😀b");
  assert.equal(wireProblem(d, changesFromWire([{ from: 1, to: 3, insert: "" }], 4)), null);
  assert.match(wireProblem(d, changesFromWire([{ from: 2, to: 2, insert: "x" }], 4)) ?? "", /surrogate pair/);
  assert.match(wireProblem(d, changesFromWire([{ from: 0, to: 2, insert: "" }], 4)) ?? "", /surrogate pair/);
  assert.match(wireProblem(d, changesFromWire([{ from: 0, to: 0, insert: "\ud83d" }], 4)) ?? "", /lone surrogate/);
  assert.match(wireProblem(d, changesFromWire([{ from: 0, to: 0, insert: "x\ude00" }], 4)) ?? "", /lone surrogate/);
});

test("UpdateBuffer orders out-of-order arrivals and releases contiguous runs", () => {
  const buf = new UpdateBuffer<{ version: number; tag: string }>();
  assert.equal(buf.add({ version: 3, tag: "c" }, 0), true);
  assert.equal(buf.add({ version: 2, tag: "b" }, 0), true);
  assert.deepEqual(buf.take(0), []); // 1 is missing
  assert.equal(buf.hasGap(0), true);
  assert.equal(buf.lowest(), 2);
  assert.equal(buf.add({ version: 1, tag: "a" }, 0), true);
  assert.equal(buf.add({ version: 5, tag: "e" }, 0), true);
  assert.deepEqual(
    buf.take(0).map((u) => u.tag),
    ["a", "b", "c"],
  );
  assert.equal(buf.hasGap(3), true); // 5 waits for 4
  assert.equal(buf.add({ version: 4, tag: "d" }, 3), true);
  assert.deepEqual(
    buf.take(3).map((u) => u.tag),
    ["d", "e"],
  );
  assert.equal(buf.size, 0);
  assert.equal(buf.hasGap(5), false);
});

test("UpdateBuffer drops duplicates and versions at or below the synced one", () => {
  const buf = new UpdateBuffer<{ version: number; tag: string }>();
  assert.equal(buf.add({ version: 2, tag: "first" }, 1), true);
  assert.equal(buf.add({ version: 2, tag: "dup" }, 1), false);
  assert.equal(buf.add({ version: 1, tag: "old" }, 1), false);
  assert.equal(buf.add({ version: 0, tag: "older" }, 1), false);
  assert.deepEqual(buf.take(1), [{ version: 2, tag: "first" }]);
  // Buffered before the synced version was known (e.g. before `connected`): filtered on take.
  buf.add({ version: 4, tag: "x" }, -1);
  buf.add({ version: 6, tag: "y" }, -1);
  buf.add({ version: 7, tag: "z" }, -1);
  assert.deepEqual(
    buf.take(5).map((u) => u.tag),
    ["y", "z"],
  );
  assert.equal(buf.size, 0);
  buf.add({ version: 9, tag: "w" }, 5);
  buf.prune(9);
  assert.equal(buf.size, 0);
});

test("compactUnconfirmed composes never-sent updates into one and keeps sent ones", () => {
  let state = createCollabState("abc", 4, "me");
  const confirmed = state.doc;
  const local = (spec: WireChange) => {
    state = state.update({ changes: ChangeSet.of([spec], state.doc.length, "\n") }).state;
  };
  local({ from: 3, to: 3, insert: "d" }); // sent
  local({ from: 0, to: 0, insert: "\r\n" });
  local({ from: 2, to: 3, insert: "" });
  local({ from: 4, to: 4, insert: "😀" });
  assert.equal(sendableUpdates(state).length, 4);
  const { state: next, kept } = compactUnconfirmed(state, confirmed, 1);
  assert.equal(kept, 1);
  assert.equal(next.doc.toString(), state.doc.toString());
  const ups = sendableUpdates(next);
  assert.equal(ups.length, 2);
  assert.deepEqual(changesToWire(ups[0]!.changes), [{ from: 3, to: 3, insert: "d" }]);
  assert.equal(ups[1]!.clientID, "me");
  // An insert then its deletion compose to nothing: the update disappears.
  let s2 = createCollabState("xy", 0, "me");
  s2 = s2.update({ changes: ChangeSet.of([{ from: 1, insert: "q" }], 2, "\n") }).state;
  s2 = s2.update({ changes: ChangeSet.of([{ from: 1, to: 2 }], 3, "\n") }).state;
  const c2 = compactUnconfirmed(s2, Text.of(["xy"]), 0);
  assert.equal(sendableUpdates(c2.state).length, 0);
  assert.equal(c2.state.doc.toString(), "xy");
});

test("sent updates take the server's canonical structure (mapping depends on it)", () => {
  // "insert X at 1, then delete 1..2" composes to an insert section followed by a deletion, while the
  // server rebuilds the same wire change {1..2 -> "X"} as one replacement; over a concurrent
  // replacement of the same range the two place "X" differently.
  const insertThenDelete = ChangeSet.of([{ from: 1, insert: "X" }], 2, "\n").compose(
    ChangeSet.of([{ from: 2, to: 3 }], 3, "\n"),
  );
  assert.deepEqual(changesToWire(insertThenDelete), [{ from: 1, to: 2, insert: "X" }]);
  assert.equal(isCanonical(insertThenDelete), false);
  const canonical = canonicalChanges(insertThenDelete);
  assert.equal(isCanonical(canonical), true);
  const concurrent = changesFromWire(
    [
      { from: 0, to: 0, insert: " " },
      { from: 1, to: 2, insert: "a\r" },
    ],
    2,
  );
  const base = doc("\n\n");
  const after = concurrent.apply(base);
  const viaLocal = insertThenDelete.map(concurrent).apply(after).toString();
  const viaServer = canonical.map(concurrent).apply(after).toString();
  assert.notEqual(viaLocal, viaServer);

  // compactUnconfirmed rewrites every pending update into the canonical form.
  let state = createCollabState("\n\n", 0, "me");
  state = state.update({ changes: insertThenDelete }).state;
  const { state: next, kept } = compactUnconfirmed(state, base, 1);
  assert.equal(kept, 1);
  const [only] = sendableUpdates(next);
  assert.equal(JSON.stringify(only!.changes.toJSON()), JSON.stringify(canonical.toJSON()));
  // Already canonical: left untouched.
  assert.equal(compactUnconfirmed(next, base, 1).state, next);
});
