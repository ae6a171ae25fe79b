/**
 * Local updates larger than the server's batch limits (MAX_CHANGES_PER_UPDATE 1000,
 * MAX_CHANGES_PER_BATCH 2000 by default), e.g. a replace-all, or offline edits carried around many
 * of the others' changes: the client splits an update into consecutive ones (collab-state.ts
 * `splitChanges`) and sends a batch's first updates when all would exceed a limit (sync-engine.ts
 * `batchPrefix`). Before, the server refused the batch with `invalid_payload` and the client dropped
 * every unconfirmed edit. Property test of the split (fast-check), then a real in-process server.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { ChangeSet, Text } from "@codemirror/state";
import { CodespaceClient } from "../client/index.js";
import { splitChanges } from "../client/collab-state.js";
import { changesToWire, isCanonical, LINE_SEPARATOR } from "../protocol/wire.js";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";

let srv: CodespaceServer;
let url: string;
const clients: CodespaceClient[] = [];

before(async () => {
  ({ server: srv, url } = await startInProcessServer({ LOG_LEVEL: "error" }));
});

after(async () => {
  for (const c of clients) c.close();
  await srv?.close();
});

test("splitChanges: parts of at most `max` changes, canonical, composing to the original", { timeout: 60_000 }, () => {
  const doc = fc.array(fc.constantFrom("a", "bc", "\n", "\r", "😀", "é"), { minLength: 1, maxLength: 60 }).map((p) => p.join(""));
  fc.assert(
    fc.property(doc, fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.constantFrom("", "x", "\n", "yz", "😀")), { maxLength: 40 }), fc.integer({ min: 1, max: 7 }), (text, edits, max) => {
      // non-overlapping changes at distinct sorted positions
      const seen = new Set<number>();
      const specs: { from: number; to: number; insert: string }[] = [];
      let last = -1;
      for (const [at, len, insert] of edits.map(([a, l, i]) => [a % (text.length + 1), l, i] as const).sort((x, y) => x[0] - y[0])) {
        if (at <= last || seen.has(at)) continue;
        const to = Math.min(text.length, at + len);
        if (to === at && insert === "") continue;
        specs.push({ from: at, to, insert });
        seen.add(at);
        last = to;
      }
      const doc0 = Text.of(text.split(LINE_SEPARATOR));
      const set = ChangeSet.of(specs, text.length, LINE_SEPARATOR);
      const parts = splitChanges(set, max);
      assert.equal(parts.length, Math.max(1, Math.ceil(changesToWire(set).length / max)));
      let d = doc0;
      for (const p of parts) {
        assert.ok(changesToWire(p).length <= max);
        assert.equal(p.length, d.length);
        if (parts.length > 1) assert.ok(isCanonical(p));
        d = p.apply(d);
      }
      assert.equal(d.toString(), set.apply(doc0).toString());
    }),
    { numRuns: 300 },
  );
});

test("a replace-all of 2,500 matches is sent in limited updates and batches and reaches everyone", { timeout: 30_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const errors: string[] = [];
  const open = async (): Promise<CodespaceClient> => {
    const c = await CodespaceClient.connect(url, token, { transports: ["websocket"] });
    c.on("error", (err) => errors.push(`${err.code} ${err.message}`));
    clients.push(c);
    return c;
  };
  const a = await open();
  const b = await open();
  a.applyLocal([{ from: 0, to: 0, insert: "foo bar\n".repeat(2500) }]);
  await a.whenSynced();
  await b.waitForVersion(a.version);
  const before = a.version;
  const batches: number[] = [];
  let largest = 0;
  a.socket.prependAnyOutgoing((event: string, payload: { updates?: { changes: unknown[] }[] }) => {
    if (event !== "insert_value") return;
    const counts = payload.updates!.map((u) => u.changes.length);
    largest = Math.max(largest, ...counts);
    batches.push(counts.reduce((x, y) => x + y, 0));
  });
  // one local update: every "foo" becomes "qux", plus an edit typed right after
  const text = a.text;
  const all = [...text.matchAll(/foo/g)].map((m) => ({ from: m.index!, to: m.index! + 3, insert: "qux" }));
  assert.equal(all.length, 2500);
  a.applyLocal(all);
  a.applyLocal([{ from: a.text.length, to: a.text.length, insert: "// renamed\n" }]);
  await a.whenSynced();
  await b.waitForVersion(a.version);
  assert.deepEqual(errors, []);
  assert.ok(largest <= 1000, `an update of ${largest} changes was sent`);
  assert.equal(a.text, "qux bar\n".repeat(2500) + "// renamed\n");
  assert.equal(b.text, a.text);
  assert.ok(batches.length >= 2 && batches.every((n) => n <= 2000), `batches of ${batches.join(", ")} changes`);
  assert.equal(batches.reduce((x, y) => x + y, 0), 2501);
  assert.ok(a.version - before >= 3, "at least three updates (1000 + 1000 + 500 changes, and the comment)");
  const fresh = await open();
  assert.equal(fresh.text, a.text);
});

test("a split update resent after the others inserted inside a replaced range is split again, not refused", { timeout: 30_000 }, async () => {
  // A rate limit of one insert_value per second per socket makes the replace-all's first batch come
  // back `rate_limited` (transient: resent after a backoff) while B types inside a "foo" it replaces.
  // Mapped over B's insert, that replacement becomes two changes: the sent update of 1000 changes
  // has 1001, which the server refuses (before: invalid_payload, the whole replace-all dropped).
  const limited = await startInProcessServer({ LOG_LEVEL: "error", RATE_LIMIT_EVENTS: "1", RATE_LIMIT_WINDOW_MS: "1000" });
  const own: CodespaceClient[] = [];
  try {
    const token = `tmp-${randomUUID()}`;
    const errors: string[] = [];
    const open = async (name: string): Promise<CodespaceClient> => {
      const c = await CodespaceClient.connect(limited.url, token, { transports: ["websocket"] });
      c.on("error", (err) => errors.push(`${name}: ${err.code} ${err.message}`));
      own.push(c);
      return c;
    };
    const a = await open("a");
    const b = await open("b");
    b.applyLocal([{ from: 0, to: 0, insert: "foo bar\n".repeat(1500) }]);
    await b.whenSynced();
    await a.waitForVersion(b.version);
    const sent: number[][] = [];
    let typed: Promise<void> | undefined;
    a.socket.prependAnyOutgoing((event: string, payload: { updates?: { changes: unknown[] }[] }) => {
      if (event !== "insert_value") return;
      sent.push(payload.updates!.map((u) => u.changes.length));
      if (sent.length === 2) {
        b.applyLocal([{ from: 1, to: 1, insert: "Z" }]); // "fZoo": inside the first replaced range
        typed = b.whenSynced();
      }
    });
    a.applyLocal([{ from: a.text.length, to: a.text.length, insert: "x" }]); // spends a's one event
    await a.whenSynced();
    const all = [...a.text.matchAll(/foo/g)].map((m) => ({ from: m.index!, to: m.index! + 3, insert: "quux" }));
    a.applyLocal(all);
    await a.whenSynced();
    await typed;
    await b.waitForVersion(a.version);
    await a.waitForVersion(b.version);
    assert.deepEqual(errors, []);
    assert.ok(sent.length >= 3, `the replace-all's first batch was refused and resent (${JSON.stringify(sent)})`);
    assert.ok(sent.flat().every((n) => n <= 1000), `updates of ${JSON.stringify(sent)} changes were sent`);
    assert.equal(a.text, "quuxZ bar\n" + "quux bar\n".repeat(1499) + "x"); // B's Z kept, every foo replaced once
    assert.equal(b.text, a.text);
  } finally {
    for (const c of own) c.close();
    await limited.close();
  }
});

for (const [how, options] of [
  ["the limits the server announces in connected", {}],
  ["option limits", { limits: { maxChangesPerBatch: 500 } }],
] as const) {
  test(`with ${how}, a server allowing fewer changes per batch than per update gets updates that fit a batch`, { timeout: 30_000 }, async () => {
    const small = await startInProcessServer({ LOG_LEVEL: "error", MAX_CHANGES_PER_BATCH: "500" });
    const own: CodespaceClient[] = [];
    try {
      const token = `tmp-${randomUUID()}`;
      const errors: string[] = [];
      const open = async (): Promise<CodespaceClient> => {
        const c = await CodespaceClient.connect(small.url, token, { transports: ["websocket"], ...options });
        c.on("error", (err) => errors.push(`${err.code} ${err.message}`));
        own.push(c);
        return c;
      };
      const a = await open();
      assert.deepEqual(a.lastConnected?.limits, { maxChangesPerUpdate: 1000, maxChangesPerBatch: 500, maxUpdatesPerBatch: 1000, maxMessageBytes: 4194304 });
      a.applyLocal([{ from: 0, to: 0, insert: "foo bar\n".repeat(1000) }]);
      await a.whenSynced();
      const batches: number[] = [];
      a.socket.prependAnyOutgoing((event: string, payload: { updates?: { changes: unknown[] }[] }) => {
        if (event === "insert_value") batches.push(payload.updates!.reduce((n, u) => n + u.changes.length, 0));
      });
      a.applyLocal([...a.text.matchAll(/foo/g)].map((m) => ({ from: m.index!, to: m.index! + 3, insert: "qux" })));
      await a.whenSynced();
      assert.deepEqual(errors, []);
      assert.deepEqual(batches, [500, 500]);
      const fresh = await open();
      assert.equal(fresh.text, "qux bar\n".repeat(1000));
    } finally {
      for (const c of own) c.close();
      await small.close();
    }
  });
}

test("a split replace-all refused rate_limited, then reset by version_too_old while offline, is carried whole", { timeout: 30_000 }, async () => {
  // The first batch (2 x 1000 changes) comes back rate_limited; A goes offline during the backoff
  // and others move the codespace past HISTORY_LENGTH. Before, the reset dropped that refused batch
  // as "sent" and carried only the third update: 500 of 2,500 matches replaced, silently.
  const limited = await startInProcessServer({ LOG_LEVEL: "error", RATE_LIMIT_EVENTS: "1", RATE_LIMIT_WINDOW_MS: "1000", HISTORY_LENGTH: "3" });
  const own: CodespaceClient[] = [];
  try {
    const token = `tmp-${randomUUID()}`;
    const errors: string[] = [];
    const open = async (): Promise<CodespaceClient> => {
      const c = await CodespaceClient.connect(limited.url, token, { transports: ["websocket"] });
      c.on("error", (err) => errors.push(`${err.code} ${err.message}`));
      own.push(c);
      return c;
    };
    const a = await open();
    const others = await Promise.all(Array.from({ length: 5 }, () => open()));
    a.applyLocal([{ from: 0, to: 0, insert: "foo bar\n".repeat(2500) }]); // spends a's one event
    await a.whenSynced();
    await Promise.all(others.map((c) => c.waitForVersion(a.version)));
    const resets: string[] = [];
    a.on("reset", (r) => resets.push(`${r.reason} kept ${r.kept}`));
    let sends = 0;
    let typed: Promise<void> | undefined;
    const offline = new Promise<void>((resolve) => a.socket.once("disconnect", () => resolve()));
    a.socket.prependAnyOutgoing((event: string) => {
      if (event !== "insert_value" || ++sends !== 1) return;
      // the rate_limited answer is on its way; once a is offline the others type
      typed = offline.then(async () => {
        for (const c of others) {
          c.applyLocal([{ from: c.text.length, to: c.text.length, insert: "//\n" }]);
          await c.whenSynced();
        }
      });
    });
    a.applyLocal([...a.text.matchAll(/foo/g)].map((m) => ({ from: m.index!, to: m.index! + 3, insert: "qux" })));
    // no event tells a transient refusal: watch the push side until it is backing off
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const p = a.phase;
        if (p.kind === "online" && p.push.kind === "backoff") resolve();
        else setImmediate(check);
      };
      check();
    });
    a.socket.io.engine.close();
    await typed;
    await a.whenSynced();
    const fresh = await open();
    assert.deepEqual(errors, []);
    assert.ok(resets.some((r) => r.startsWith("version_too_old")), `a version_too_old reset happened (${resets.join(", ")})`);
    assert.equal(fresh.text, a.text);
    assert.equal(a.text.split("foo").length - 1, 0, "every foo replaced");
    assert.equal(a.text.split("qux").length - 1, 2500);
  } finally {
    for (const c of own) c.close();
    await limited.close();
  }
});
