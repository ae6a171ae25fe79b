/** receiveServerUpdates: an own empty update the client had dropped must not confirm its next update. */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { ChangeSet } from "@codemirror/state";
import { getSyncedVersion, sendableUpdates } from "@codemirror/collab";
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
