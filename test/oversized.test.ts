/**
 * Oversized edits against a real server process (MAX_DOC_LENGTH=1000): `doc_too_large`, with the
 * limit in the message and in `error.limit`, whatever the payload shape (one huge insert, a batch of
 * updates that together exceed it, a replacement); a selection beyond the limit is not refused; the
 * server logs no `invalid_payload` for any of it. The reference client drops only the oversized
 * paste, says "this paste is too large (limit 1000 characters)" and keeps the other unsent edits.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { CodespaceClient, type CodespaceClientError, type ResetEvent } from "../client/index.js";
import type { InsertValueAck } from "../server/protocol/events.js";
import { connectSocket, emitAck } from "./helpers/socket.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";

const LIMIT = 1000;
let srv: ServerProcess;

before(async () => {
  srv = await startServerProcess({ MAX_DOC_LENGTH: String(LIMIT), LOG_LEVEL: "info" });
});
after(() => srv?.stop());

const shapes: { name: string; updates: (len: number) => { clientID: string; changes: { from: number; to: number; insert: string }[] }[] }[] = [
  { name: "one insert longer than the limit", updates: () => [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "x".repeat(LIMIT + 1) }] }] },
  { name: "an insert that makes the document too long", updates: (len) => [{ clientID: "c", changes: [{ from: len, to: len, insert: "x".repeat(LIMIT - len + 1) }] }] },
  { name: "several updates that together exceed it", updates: () => [
    { clientID: "c", changes: [{ from: 0, to: 0, insert: "y".repeat(600) }] },
    { clientID: "c", changes: [{ from: 0, to: 0, insert: "z".repeat(600) }] },
  ] },
  { name: "a replacement that grows past it", updates: (len) => [{ clientID: "c", changes: [{ from: 0, to: len, insert: "r".repeat(LIMIT + 5) }] }] },
];

test("doc_too_large with the limit, whatever the payload shape; selections past the limit are not refused", async () => {
  const { socket, connected } = await connectSocket(srv.url, `tmp-${randomUUID()}`);
  try {
    const seeded = await emitAck(socket, "insert_value", { epoch: connected.epoch, version: 0, updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "seed" }] }] });
    assert.deepEqual(seeded, { ok: true, version: 1 });
    for (const shape of shapes) {
      const ack = (await emitAck(socket, "insert_value", { epoch: connected.epoch, version: 1, updates: shape.updates(4) })) as InsertValueAck;
      assert.equal(ack.ok, false, shape.name);
      if (ack.ok) continue;
      assert.equal(ack.error.code, "doc_too_large", shape.name);
      assert.equal(ack.error.limit, LIMIT, shape.name);
      assert.match(ack.error.message, new RegExp(`${LIMIT}`), shape.name);
    }
    // the selection of a page whose local document holds the refused paste
    assert.deepEqual(await emitAck(socket, "create_selection", { selections: [{ anchor: LIMIT + 500, head: LIMIT + 501 }] }), { ok: true });
    assert.doesNotMatch(srv.output(), /invalid_payload/);
  } finally {
    socket.close();
  }
});

test("the reference client drops only the paste, reports it with the limit, keeps the other unsent edits", async () => {
  const token = `tmp-${randomUUID()}`;
  const c = await CodespaceClient.connect(srv.url, token);
  try {
    const errors: CodespaceClientError[] = [];
    const resets: ResetEvent[] = [];
    c.on("error", (e) => errors.push(e));
    c.on("reset", (r) => resets.push(r));
    c.applyLocal([{ from: 0, to: 0, insert: "line one\nline two\n" }]);
    await c.whenSynced();

    // one batch: an edit at the start, a huge paste at the end, an edit in the middle
    const gotError = new Promise<CodespaceClientError>((resolve) => c.once("error", resolve));
    c.applyLocal([{ from: 0, to: 0, insert: "// top\n" }]);
    c.applyLocal([{ from: c.text.length, to: c.text.length, insert: "p".repeat(LIMIT * 2) }]);
    c.applyLocal([{ from: 15, to: 15, insert: " (edited)" }]); // after "// top\nline one"
    void c.setSelection([{ anchor: c.text.length, head: c.text.length }]).catch(() => {});
    const err = await gotError;
    assert.equal(err.code, "doc_too_large");
    assert.match(err.message, /this paste is too large \(limit 1000 characters\)/);
    await c.whenSynced();
    assert.equal(c.text, "// top\nline one (edited)\nline two\n");
    assert.equal(c.pending, 0);
    assert.deepEqual(resets, [], "no reset: the other edits were kept");
    assert.equal(errors.length, 1, errors.map((e) => e.message).join("; "));

    const d = await CodespaceClient.connect(srv.url, token);
    assert.equal(d.text, c.text, "the server holds the kept edits");
    d.close();
    assert.doesNotMatch(srv.output(), /invalid_payload/);
  } finally {
    c.close();
  }
});
