/**
 * receiveServerUpdates: an own empty update the client had dropped must not confirm its next update;
 * a run received in one go equals receiving it update by update.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ChangeSet, type EditorState } from "@codemirror/state";
import { getClientID, getSyncedVersion, receiveUpdates, sendableUpdates } from "@codemirror/collab";
import { createCollabState, receiveServerUpdates } from "../client/collab-state.js";

test("an own EMPTY update arriving while the next unconfirmed one is not empty is received as a remote no-op", () => {
  let state = createCollabState("", 2, "a");
  state = state.update({ changes: { from: 0, insert: "X" } }).state; // unconfirmed U2
  const r = receiveServerUpdates(state, [{ clientID: "a", changes: ChangeSet.empty(0) }]);
  assert.equal(getSyncedVersion(r.state), 3);
  assert.equal(sendableUpdates(r.state).length, 1, "U2 is still unconfirmed");
  assert.equal(r.state.doc.toString(), "X");
  assert.equal(r.changes, null);
  // and U2's own broadcast then confirms it
  const r2 = receiveServerUpdates(r.state, [{ clientID: "a", changes: ChangeSet.of({ from: 0, insert: "X" }, 0, "\n") }]);
  assert.equal(sendableUpdates(r2.state).length, 0);
  assert.equal(r2.state.doc.toString(), "X");
});

test("an own empty update confirms an unconfirmed update that is empty too; remote changes still apply", () => {
  let state = createCollabState("abc", 1, "a");
  state = state.update({ changes: { from: 1, to: 2 } }).state; // delete "b": unconfirmed
  const remote = ChangeSet.of({ from: 0, to: 3 }, 3, "\n"); // someone deleted everything first
  const r = receiveServerUpdates(state, [
    { clientID: "b", changes: remote },
    { clientID: "a", changes: ChangeSet.empty(0) },
  ]);
  assert.equal(getSyncedVersion(r.state), 3);
  assert.equal(sendableUpdates(r.state).length, 0);
  assert.equal(r.state.doc.toString(), "");
  assert.ok(r.changes && !r.changes.empty);
});

/** The per-update reference: one `receiveUpdates` per update, with receiveServerUpdates' empty-own rule. */
function oneByOne(state: EditorState, updates: { clientID: string; changes: ChangeSet }[]): EditorState {
  const me = getClientID(state);
  for (const u of updates) {
    let update = u;
    if (u.clientID === me && u.changes.empty) {
      const next = sendableUpdates(state)[0];
      if (!next || !next.changes.empty) update = { changes: u.changes, clientID: "\u0000ref-not-ours" };
    }
    state = receiveUpdates(state, [update]).state;
  }
  return state;
}

test("a run received in one go (nothing unconfirmed, or after the own updates confirm the pending ones) equals receiving it update by update", () => {
  const piece = fc.constantFrom("a", "b", "\n", "é", "xy");
  fc.assert(
    fc.property(
      fc.string({ unit: piece, maxLength: 40 }),
      fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat(3), fc.string({ unit: piece, maxLength: 3 })), { maxLength: 40 }),
      fc.nat(3),
      (start, raw, pending) => {
        // `pending` local updates, then a run: first those same updates confirmed (own), then the others' updates
        let state = createCollabState(start, 0, "me");
        const base = state.doc;
        let doc = base;
        const run: { clientID: string; changes: ChangeSet }[] = [];
        for (let i = 0; i < pending; i++) {
          const changes = ChangeSet.of({ from: doc.length, insert: `L${i}` }, doc.length, "\n");
          state = state.update({ changes }).state;
          run.push({ clientID: "me", changes });
          doc = changes.apply(doc);
        }
        for (const [mine, at, del, insert] of raw) {
          const from = at % (doc.length + 1);
          const to = Math.min(doc.length, from + del);
          if (from === to && insert === "" && !mine) continue;
          const changes = ChangeSet.of(from === to && insert === "" ? [] : [{ from, to, insert }], doc.length, "\n");
          run.push({ clientID: mine ? "me" : "other", changes });
          doc = changes.apply(doc);
        }
        const got = receiveServerUpdates(state, run);
        const want = oneByOne(state, run);
        assert.equal(got.state.doc.toString(), want.doc.toString());
        assert.equal(getSyncedVersion(got.state), getSyncedVersion(want));
        assert.equal(sendableUpdates(got.state).length, sendableUpdates(want).length);
        assert.equal(got.state.doc.toString(), doc.toString(), "the run's end document");
        if (got.changes) assert.equal(got.changes.apply(state.doc).toString(), got.state.doc.toString(), "changes map the old document to the new");
      },
    ),
    { numRuns: 500 },
  );
});
