/**
 * Edits typed offline survive a `version_too_old` reset (client/carry-over.ts, client/sync-engine.ts):
 * - `diffChanges(a, b)` applied to `a` gives exactly `b`, for any texts (surrogate pairs, "\r", "\n"
 *   included; property-based, fast-check), and `carryOnto` never returns an update that splits a
 *   surrogate pair;
 * - end to end on a real in-process server with a short history: a client cut off while more than
 *   HISTORY_LENGTH updates are accepted gets the snapshot on reconnect, keeps what it typed offline
 *   (once, mapped onto the others' text), and every client and a fresh one converge on that text.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { ChangeSet, Text } from "@codemirror/state";
import { CodespaceClient, type ResetEvent } from "../client/index.js";
import { carryOnto, diffChanges } from "../client/carry-over.js";
import { LINE_SEPARATOR, wireProblem } from "../protocol/wire.js";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";

const HISTORY_LENGTH = 5;
let srv: CodespaceServer;
let url: string;
const clients: CodespaceClient[] = [];

before(async () => {
  ({ server: srv, url } = await startInProcessServer({ LOG_LEVEL: "error", HISTORY_LENGTH: String(HISTORY_LENGTH) }));
});

after(async () => {
  for (const c of clients) c.close();
  await srv?.close();
});

const textOf = (s: string): Text => Text.of(s.split(LINE_SEPARATOR));

/** Cuts `c` off and keeps it off (no reconnection) until `comeBackWithReset`. */
async function goOffline(c: CodespaceClient): Promise<void> {
  c.socket.io.reconnection(false);
  const gone = new Promise<void>((resolve) => c.socket.once("disconnect", () => resolve()));
  c.socket.io.engine.close();
  await gone;
}

/** Reconnects `c` and waits for the reset its `connected` brings. */
async function comeBackWithReset(c: CodespaceClient): Promise<void> {
  const reset = new Promise<void>((resolve) => c.on("reset", () => resolve()));
  c.socket.io.reconnection(true);
  c.socket.connect();
  await reset;
}
/** Texts built from pieces that stress positions: newlines, "\r", surrogate pairs, repeats. */
const text = fc.array(fc.constantFrom("a", "b", "ab", "\n", "\r", "😀", "é", " ", "xyz"), { maxLength: 40 }).map((p) => p.join(""));

test("diffChanges(a, b) turns a into exactly b, whatever the texts", { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(text, text, (a, b) => {
      assert.equal(diffChanges(a, b).apply(textOf(a)).toString(), b);
    }),
    { numRuns: 500 },
  );
});

test("carryOnto maps edits made on a base onto a snapshot, never splitting a surrogate pair", { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(text, text, text, fc.nat(), (base, snapshot, insert, at) => {
      const b = textOf(base);
      let pos = at % (base.length + 1);
      if (pos > 0 && pos < base.length && /[\udc00-\udfff]/.test(base[pos]!)) pos--;
      const unsent = ChangeSet.of([{ from: pos, insert }], base.length, LINE_SEPARATOR);
      const snap = textOf(snapshot);
      const carried = carryOnto(b, unsent, snap);
      if (insert === "") return assert.equal(carried, undefined);
      assert.ok(carried, "a non-empty insertion is always carried");
      assert.equal(wireProblem(snap, carried), null);
      const result = carried.apply(snap).toString();
      assert.equal(result.length, snapshot.length + insert.length, "the insertion lands whole, once");
    }),
    { numRuns: 500 },
  );
});

test("an edit carried over a passage the others rewrote lands at its edge, not inside their text", { timeout: 10_000 }, () => {
  const base = "def f():\n    return 1\n\ndef g():\n    return 2\n";
  const at = base.indexOf("1\n");
  const unsent = ChangeSet.of([{ from: at, insert: "42 + " }], base.length, LINE_SEPARATOR);
  // the others replaced f by comments and kept g
  const snapshot = "# computes nothing useful\n# cleaned up on review\n\ndef g():\n    return 2\n";
  const carried = carryOnto(textOf(base), unsent, textOf(snapshot));
  assert.ok(carried);
  const result = carried.apply(textOf(snapshot)).toString();
  assert.ok(result.includes("# computes nothing useful\n# cleaned up on review\n"), `their text was cut: ${JSON.stringify(result)}`);
  assert.ok(result.includes("def g():\n    return 2\n"));
  assert.equal(result.split("42 + ").length - 1, 1);
});

test("a client offline while more than HISTORY_LENGTH updates are accepted keeps what it typed offline", { timeout: 30_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const open = async (): Promise<CodespaceClient> => {
    const c = await CodespaceClient.connect(url, token, { transports: ["websocket"] });
    clients.push(c);
    return c;
  };
  const a = await open();
  const b = await open();
  a.applyLocal([{ from: 0, to: 0, insert: "line one\nline two\n" }]);
  await a.whenSynced();
  await b.waitForVersion(a.version);
  const resets: ResetEvent[] = [];
  a.on("reset", (r) => resets.push(r));

  await goOffline(a);
  const offlineAt = a.version;
  a.applyLocal([{ from: 0, to: 0, insert: "<offline-1>" }]);
  a.applyLocal([{ from: a.text.length, to: a.text.length, insert: "<offline-2>" }]);

  // meanwhile b commits more updates than the history keeps, one version each
  for (let i = 0; i < HISTORY_LENGTH * 3; i++) {
    b.applyLocal([{ from: b.text.indexOf("two"), to: b.text.indexOf("two"), insert: `[b${i}]` }]);
    await b.whenSynced();
  }
  assert.ok(b.version - offlineAt > HISTORY_LENGTH, "the history no longer reaches a's version");

  await comeBackWithReset(a);
  await a.whenSynced();
  await b.waitForVersion(a.version);

  assert.deepEqual(
    resets.map((r) => [r.reason, r.kept > 0, r.dropped]),
    [["version_too_old", true, 0]],
    "a was reset to the snapshot and carried its offline updates (none had been sent)",
  );
  assert.equal(a.text, b.text);
  for (const m of ["<offline-1>", "<offline-2>", ...Array.from({ length: HISTORY_LENGTH * 3 }, (_, i) => `[b${i}]`)]) {
    assert.equal(a.text.split(m).length - 1, 1, `${m} appears exactly once`);
  }
  assert.ok(a.text.startsWith("<offline-1>line one\n"), a.text);
  assert.ok(a.text.endsWith("two\n<offline-2>"), a.text);
  const fresh = await open();
  assert.equal(fresh.text, a.text);
});

test("a client offline while its codespace expired and was opened again (a new epoch) keeps what it typed offline", { timeout: 30_000 }, async () => {
  // a temporary codespace expires 1 s after its last edit; opened again, it starts empty, in a new epoch
  const short = await startInProcessServer({ LOG_LEVEL: "error", TMP_CODESPACE_EXPIRE_UPDATE: "1" });
  const token = `tmp-${randomUUID()}`;
  const open = async (): Promise<CodespaceClient> => {
    const c = await CodespaceClient.connect(short.url, token, { transports: ["websocket"] });
    clients.push(c);
    return c;
  };
  try {
    const a = await open();
    const b = await open();
    a.applyLocal([{ from: 0, to: 0, insert: "kept by nobody\n" }]);
    await a.whenSynced();
    const oldEpoch = a.epoch;
    const resets: ResetEvent[] = [];
    a.on("reset", (r) => resets.push(r));

    await goOffline(a);
    a.applyLocal([{ from: a.text.length, to: a.text.length, insert: "<offline>" }]);
    // b, still connected, is told when it expires
    await new Promise<void>((resolve) => b.once("expired", () => resolve()));

    await comeBackWithReset(a);
    await a.whenSynced();
    assert.notEqual(a.epoch, oldEpoch, "a new epoch");
    assert.deepEqual(resets.map((r) => [r.reason, r.kept, r.dropped]), [["epoch", 1, 0]], "the offline update was carried, none dropped");
    assert.equal(a.text, "<offline>", "typed offline, sent to the new codespace (the old text expired with it)");
    const fresh = await open();
    assert.equal(fresh.text, a.text);
  } finally {
    await short.server.close();
  }
});
