/**
 * Versions, epochs, resends, rebasing and modes (docs/protocol.md, `insert_value`, `pull`,
 * `create_selection`, "Server → client"): in-process server (in-memory store, HISTORY_LENGTH=3) and a
 * stub site API for view_only.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { connectSocket, emitAck, nextEvent, type ClientSocket } from "./helpers/socket.js";
import { applyWire } from "./helpers/wire.js";
import type { ConnectedPayload, InsertValueBroadcast, WireChange } from "../protocol/events.js";

const HISTORY = 3;
type Srv = CodespaceServer;
let srv: Srv;
let stub: StubApi;
let url: string;

before(async () => {
  stub = await startStubApi();
  ({ server: srv, url } = await startInProcessServer({ HISTORY_LENGTH: String(HISTORY), API_BASE_URL: stub.baseUrl }));
});

after(async () => {
  await srv?.close();
  await stub?.close();
});

interface Client {
  socket: ClientSocket;
  connected: ConnectedPayload;
  /** Every insert_value broadcast received, in arrival order. */
  got: InsertValueBroadcast[];
}

async function join(token: string): Promise<Client> {
  const { socket, connected } = await connectSocket(url, token);
  const got: InsertValueBroadcast[] = [];
  socket.on("insert_value", (b) => got.push(b));
  return { socket, connected, got };
}

/** Resolves once `c` has received a broadcast of `version`. */
function broadcastOf(c: Client, version: number): Promise<InsertValueBroadcast> {
  const have = c.got.find((b) => b.version === version);
  if (have) return Promise.resolve(have);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (c.socket.off("insert_value", on), reject(new Error(`no broadcast of version ${version}`))), 5000);
    const on = (b: InsertValueBroadcast) => {
      if (b.version !== version) return;
      clearTimeout(timer);
      c.socket.off("insert_value", on);
      resolve(b);
    };
    c.socket.on("insert_value", on);
  });
}

/** Text and version as a fresh connection sees them. */
async function state(token: string): Promise<{ code: string; version: number; epoch: string }> {
  const { socket, connected } = await connectSocket(url, token);
  socket.close();
  return { code: connected.code, version: connected.version, epoch: connected.epoch };
}

const ins = (epoch: string, version: number, clientID: string, ...changes: WireChange[][]) => ({
  epoch,
  version,
  updates: changes.map((c) => ({ clientID, changes: c })),
});
const tmp = () => `tmp-${randomUUID()}`;
const closeAll = (...cs: Client[]) => cs.forEach((c) => c.socket.close());

function assertError(ack: unknown, code: string): void {
  const a = ack as { ok: boolean; error?: { code: string; message: string } };
  assert.equal(a.ok, false, `expected ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(a.error?.code, code, JSON.stringify(ack));
  assert.ok(a.error!.message.length > 0);
}

test("a resend of the same batch after a lost ack is applied once", async () => {
  const cs = tmp();
  const a = await join(cs);
  const b = await join(cs);
  try {
    const { epoch } = a.connected;
    const batch = ins(epoch, 0, "ca", [{ from: 0, to: 0, insert: "hello" }], [{ from: 5, to: 5, insert: " world" }]);
    const first = await emitAck(a.socket, "insert_value", batch);
    assert.deepEqual(first, { ok: true, version: 2 });
    const second = await emitAck(a.socket, "insert_value", batch);
    assert.deepEqual(second, { ok: true, version: 2 }, "the resend's ack names the same version");
    const pulled = await emitAck(b.socket, "pull", { epoch, version: 0 });
    assert.ok(pulled.ok && "updates" in pulled);
    assert.equal(pulled.version, 2);
    assert.deepEqual(pulled.updates.map((u) => u.clientID), ["ca", "ca"]);
    assert.deepEqual(await state(cs), { code: "hello world", version: 2, epoch });
    // no broadcast for the resend: the next accepted update is the third broadcast B ever sees
    assert.deepEqual(await emitAck(b.socket, "insert_value", ins(epoch, 2, "cb", [{ from: 11, to: 11, insert: "!" }])), { ok: true, version: 3 });
    await broadcastOf(b, 3);
    assert.deepEqual(b.got.map((u) => [u.version, u.clientID]), [[1, "ca"], [2, "ca"], [3, "cb"]]);
  } finally {
    closeAll(a, b);
  }
});

test("a resend after others' updates is still applied once", async () => {
  const cs = tmp();
  const a = await join(cs);
  const b = await join(cs);
  try {
    const { epoch } = a.connected;
    const batch = ins(epoch, 0, "ca", [{ from: 0, to: 0, insert: "abc" }]);
    assert.deepEqual(await emitAck(a.socket, "insert_value", batch), { ok: true, version: 1 });
    assert.deepEqual(await emitAck(b.socket, "insert_value", ins(epoch, 1, "cb", [{ from: 0, to: 0, insert: "X" }])), { ok: true, version: 2 });
    const again = await emitAck(a.socket, "insert_value", batch);
    assert.equal(again.ok, true, JSON.stringify(again));
    assert.deepEqual(await state(cs), { code: "Xabc", version: 2, epoch });
  } finally {
    closeAll(a, b);
  }
});

test("a later update sent alone at the old version while the first is unconfirmed -> invalid_version", async () => {
  const cs = tmp();
  const a = await join(cs);
  try {
    const { epoch } = a.connected;
    assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, 0, "setup", [{ from: 0, to: 0, insert: "0123456789" }])), { ok: true, version: 1 });
    assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, 1, "ca", [{ from: 0, to: 0, insert: "X" }])), { ok: true, version: 2 });
    // u2 was made on top of u1 but is sent alone at version 1, u1 still unconfirmed
    const ack = await emitAck(a.socket, "insert_value", ins(epoch, 1, "ca", [{ from: 5, to: 5, insert: "Y" }]));
    assertError(ack, "invalid_version");
    assert.deepEqual(await state(cs), { code: "X0123456789", version: 2, epoch });
    // the proper batch (u1 + u2 at version 1) is accepted, u1 deduplicated
    const ok = await emitAck(a.socket, "insert_value", ins(epoch, 1, "ca", [{ from: 0, to: 0, insert: "X" }], [{ from: 5, to: 5, insert: "Y" }]));
    assert.deepEqual(ok, { ok: true, version: 3 });
    assert.deepEqual(await state(cs), { code: "X0123Y456789", version: 3, epoch });
  } finally {
    a.socket.close();
  }
});

test("a stale epoch -> invalid_version for insert_value and pull; nothing changes", async () => {
  const cs = tmp();
  const other = await join(tmp()); // a real epoch, of another incarnation
  const a = await join(cs);
  try {
    const { epoch } = a.connected;
    assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, 0, "ca", [{ from: 0, to: 0, insert: "keep" }])), { ok: true, version: 1 });
    const stale = other.connected.epoch;
    assert.notEqual(stale, epoch);
    assertError(await emitAck(a.socket, "insert_value", ins(stale, 1, "ca", [{ from: 0, to: 0, insert: "no" }])), "invalid_version");
    assertError(await emitAck(a.socket, "insert_value", ins(stale, 0, "cz", [{ from: 0, to: 0, insert: "no" }])), "invalid_version");
    assertError(await emitAck(a.socket, "pull", { epoch: stale, version: 0 }), "invalid_version");
    assertError(await emitAck(a.socket, "pull", { epoch: stale, version: 1 }), "invalid_version");
    assert.deepEqual(await state(cs), { code: "keep", version: 1, epoch });
  } finally {
    closeAll(a, other);
  }
});

test("a version ahead of the server -> invalid_version for insert_value and pull", async () => {
  const cs = tmp();
  const a = await join(cs);
  try {
    const { epoch } = a.connected;
    assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, 0, "ca", [{ from: 0, to: 0, insert: "ab" }])), { ok: true, version: 1 });
    assertError(await emitAck(a.socket, "insert_value", ins(epoch, 2, "ca", [{ from: 0, to: 0, insert: "z" }])), "invalid_version");
    assertError(await emitAck(a.socket, "pull", { epoch, version: 2 }), "invalid_version");
    assert.deepEqual(await emitAck(a.socket, "pull", { epoch, version: 1 }), { ok: true, version: 1, updates: [] });
    assert.deepEqual(await state(cs), { code: "ab", version: 1, epoch });
  } finally {
    a.socket.close();
  }
});

test(`version_too_old beyond HISTORY_LENGTH=${HISTORY}; pull from 0 then returns a snapshot`, async () => {
  const cs = tmp();
  const a = await join(cs);
  try {
    const { epoch } = a.connected;
    for (let v = 0; v < 5; v++) {
      assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, v, "ca", [{ from: v, to: v, insert: String(v) }])), { ok: true, version: v + 1 });
    }
    assertError(await emitAck(a.socket, "insert_value", ins(epoch, 0, "cb", [{ from: 0, to: 0, insert: "old" }])), "version_too_old");
    assert.deepEqual(await emitAck(a.socket, "pull", { epoch, version: 0 }), { ok: true, version: 5, code: "01234" });
    // history still reaches back HISTORY_LENGTH updates
    const recent = await emitAck(a.socket, "pull", { epoch, version: 5 - HISTORY });
    assert.ok(recent.ok && "updates" in recent, JSON.stringify(recent));
    assert.deepEqual(recent.updates.map((u) => u.version), [3, 4, 5]);
    assert.deepEqual(await state(cs), { code: "01234", version: 5, epoch });
  } finally {
    a.socket.close();
  }
});

test("view_only: insert_value and create_selection forbidden; pull works and broadcasts arrive", async () => {
  const uuid = randomUUID();
  const viewTok = `view-${randomUUID()}`;
  const editTok = `edit-${randomUUID()}`;
  stub.setToken(viewTok, { status: 200, body: { uuid, mode: "view_only" } });
  stub.setToken(editTok, { status: 200, body: { uuid, mode: "edit" } });
  const viewer = await join(viewTok);
  const editor = await join(editTok);
  const editorSelections: unknown[] = [];
  editor.socket.on("create_selection", (s) => editorSelections.push(s));
  try {
    assert.equal(viewer.connected.mode, "view_only");
    const { epoch, version, code } = viewer.connected;
    assertError(await emitAck(viewer.socket, "insert_value", ins(epoch, version, "cv", [{ from: code.length, to: code.length, insert: "v" }])), "forbidden");
    assertError(await emitAck(viewer.socket, "create_selection", { selections: [{ anchor: 0, head: 0 }] }), "forbidden");
    assert.deepEqual(await emitAck(viewer.socket, "pull", { epoch, version }), { ok: true, version, updates: [] });

    const ack = await emitAck(editor.socket, "insert_value", ins(epoch, version, "ce", [{ from: code.length, to: code.length, insert: "E" }]));
    assert.deepEqual(ack, { ok: true, version: version + 1 });
    const b = await broadcastOf(viewer, version + 1);
    assert.deepEqual(b, { version: version + 1, clientID: "ce", sender: editor.socket.id, changes: [{ from: code.length, to: code.length, insert: "E" }] });
    const pulled = await emitAck(viewer.socket, "pull", { epoch, version });
    assert.deepEqual(pulled, { ok: true, version: version + 1, updates: [{ version: version + 1, clientID: "ce", changes: b.changes }] });
    assert.deepEqual(viewer.got.map((u) => u.clientID), ["ce"], "the refused insert was never broadcast");
    assert.deepEqual(editorSelections, [], "the refused selection was never broadcast");
    assert.equal((await state(editTok)).code, code + "E");
  } finally {
    closeAll(viewer, editor);
  }
});

test("concurrent pushes at the same base are both accepted, the later one rebased; everyone converges", async () => {
  const cs = tmp();
  const a = await join(cs);
  const b = await join(cs);
  try {
    const { epoch } = a.connected;
    assert.deepEqual(await emitAck(a.socket, "insert_value", ins(epoch, 0, "setup", [{ from: 0, to: 0, insert: "hello" }])), { ok: true, version: 1 });
    const aChanges: WireChange[] = [{ from: 1, to: 1, insert: "A" }, { from: 4, to: 4, insert: "a" }];
    const bChanges: WireChange[] = [{ from: 2, to: 2, insert: "B" }, { from: 3, to: 3, insert: "b" }];
    const [ackA, ackB] = await Promise.all([
      emitAck(a.socket, "insert_value", ins(epoch, 1, "ca", aChanges)),
      emitAck(b.socket, "insert_value", ins(epoch, 1, "cb", bChanges)),
    ]);
    assert.ok(ackA.ok && ackB.ok, JSON.stringify([ackA, ackB]));
    assert.deepEqual([ackA.version, ackB.version].sort(), [2, 3]);
    for (const c of [a, b]) await Promise.all([broadcastOf(c, 2), broadcastOf(c, 3)]);
    const [v2, v3] = [2, 3].map((v) => a.got.find((u) => u.version === v)!);
    assert.deepEqual(b.got.filter((u) => u.version > 1).sort((x, y) => x.version - y.version), [v2, v3], "both sockets got the same broadcasts");
    // each ack names the version of its own broadcast
    assert.equal((v2!.clientID === "ca" ? ackA : ackB).version, 2);
    const later = v3!.clientID === "ca"
      ? [{ from: 1, to: 1, insert: "A" }, { from: 6, to: 6, insert: "a" }] // shifted over B and b
      : [{ from: 3, to: 3, insert: "B" }, { from: 4, to: 4, insert: "b" }]; // shifted over A
    assert.deepEqual(v2!.changes, v2!.clientID === "ca" ? aChanges : bChanges, "the first is stored as sent");
    assert.deepEqual(v3!.changes, later, "the later one is rebased");
    for (const c of [a, b]) {
      const text = c.got.sort((x, y) => x.version - y.version).reduce((s, u) => applyWire(s, u.changes), c.connected.code);
      assert.equal(text, "hAeBlblao");
    }
    assert.deepEqual(await state(cs), { code: "hAeBlblao", version: 3, epoch });
  } finally {
    closeAll(a, b);
  }
});

test("create_selection reaches the others as { sender, selections }, not the sender", async () => {
  const cs = tmp();
  const a = await join(cs);
  const b = await join(cs);
  const c = await join(cs);
  try {
    const toB = nextEvent(b.socket, "create_selection");
    const toC = nextEvent(c.socket, "create_selection");
    const toA = nextEvent(a.socket, "create_selection");
    const selections = [{ anchor: 3, head: 7 }, { anchor: 0, head: 0 }];
    assert.deepEqual(await emitAck(a.socket, "create_selection", { selections }), { ok: true });
    assert.deepEqual(await toB, { sender: a.socket.id, selections });
    assert.deepEqual(await toC, { sender: a.socket.id, selections });
    // A's first create_selection is B's, sent after A's was acked: A never got its own
    assert.deepEqual(await emitAck(b.socket, "create_selection", { selections: [{ anchor: 1, head: 1 }] }), { ok: true });
    assert.deepEqual(await toA, { sender: b.socket.id, selections: [{ anchor: 1, head: 1 }] });
  } finally {
    closeAll(a, b, c);
  }
});

test("each insert_value broadcast reaches the sender too, with its sender id", async () => {
  const cs = tmp();
  const a = await join(cs);
  const b = await join(cs);
  try {
    const { epoch } = a.connected;
    const ack = await emitAck(a.socket, "insert_value", ins(epoch, 0, "ca", [{ from: 0, to: 0, insert: "hi" }], [{ from: 2, to: 2, insert: "!" }]));
    assert.deepEqual(ack, { ok: true, version: 2 });
    const expected = [
      { version: 1, clientID: "ca", sender: a.socket.id, changes: [{ from: 0, to: 0, insert: "hi" }] },
      { version: 2, clientID: "ca", sender: a.socket.id, changes: [{ from: 2, to: 2, insert: "!" }] },
    ];
    // the sender's broadcasts leave before its ack
    assert.deepEqual(a.got, expected);
    await broadcastOf(b, 2);
    assert.deepEqual(b.got, expected);
    assert.deepEqual(await emitAck(b.socket, "insert_value", ins(epoch, 2, "cb", [{ from: 0, to: 0, insert: ">" }])), { ok: true, version: 3 });
    assert.deepEqual(await broadcastOf(a, 3), { version: 3, clientID: "cb", sender: b.socket.id, changes: [{ from: 0, to: 0, insert: ">" }] });
    assert.deepEqual(b.got.at(-1), { version: 3, clientID: "cb", sender: b.socket.id, changes: [{ from: 0, to: 0, insert: ">" }] });
  } finally {
    closeAll(a, b);
  }
});
