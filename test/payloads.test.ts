/**
 * Malformed client payloads (docs/protocol.md, "Client → server"): every one is refused with a
 * stable code and a message, changes nothing (history, text, broadcasts), and leaves the server
 * answering. In-process server, in-memory store, small limits.
 */
import { after, before, beforeEach, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, emitAck, nextEvent, type ClientSocket } from "./helpers/socket.js";
import type { WireChange } from "../protocol/events.js";

const MAX_UPDATES = 5;
const MAX_CHANGES = 5;
const MAX_SELECTIONS = 3;
const MAX_DOC = 50;

type Srv = CodespaceServer;
let srv: Srv;
let url: string;
let codespace: string;
let epoch: string;
/** The document every case starts from and must leave untouched. */
const TEXT = "a😀bcdefgh"; // 10 UTF-16 code units, the pair at [1,3)
const VERSION = 2;
let baselinePull: unknown;

before(async () => {
  ({ server: srv, url } = await startInProcessServer({
    MAX_UPDATES_PER_BATCH: String(MAX_UPDATES),
    MAX_CHANGES_PER_UPDATE: String(MAX_CHANGES),
    MAX_SELECTIONS: String(MAX_SELECTIONS),
    MAX_DOC_LENGTH: String(MAX_DOC),
  }));
});

/** Gives each case its own codespace holding TEXT at VERSION (so one failure cannot cascade). */
beforeEach(async () => {
  codespace = `tmp-payloads-${randomUUID()}`;
  const { socket, connected } = await connectSocket(url, codespace);
  try {
    epoch = connected.epoch;
    const up = (version: number, changes: WireChange[]) =>
      emitAck(socket, "insert_value", { epoch, version, updates: [{ clientID: "setup", changes }] });
    assert.deepEqual(await up(0, [{ from: 0, to: 0, insert: "a😀b" }]), { ok: true, version: 1 });
    assert.deepEqual(await up(1, [{ from: 4, to: 4, insert: "cdefgh" }]), { ok: true, version: 2 });
    baselinePull = await emitAck(socket, "pull", { epoch, version: 0 });
    assert.equal((baselinePull as { updates: unknown[] }).updates.length, 2);
  } finally {
    socket.close();
  }
  const fresh = await connectSocket(url, codespace);
  fresh.socket.close();
  assert.equal(fresh.connected.code, TEXT);
  assert.equal(fresh.connected.version, VERSION);
});

after(async () => {
  await srv?.close();
});

type Code = "invalid_payload" | "invalid_version" | "doc_too_large";
interface Case {
  name: string;
  event: "insert_value" | "create_selection" | "pull";
  payload: () => unknown;
  code: Code;
}

/** An insert_value at the current version with one update of `changes` (or the given updates). */
const ins = (changes: unknown, clientID: unknown = "bad"): unknown => ({ epoch, version: VERSION, updates: [{ clientID, changes }] });
const insUpdates = (updates: unknown): unknown => ({ epoch, version: VERSION, updates });
const insVersion = (version: unknown): unknown => ({ epoch, version, updates: [{ clientID: "bad", changes: [{ from: 0, to: 0, insert: "x" }] }] });
const x = (from: number, to = from, insert = "x"): WireChange => ({ from, to, insert });
const manyUpdates = (n: number) => Array.from({ length: n }, () => ({ clientID: "bad", changes: [x(0)] }));

const P = "invalid_payload" as const;
const cases: Case[] = [
  // insert_value: payload and top-level fields
  { name: "payload a string", event: "insert_value", payload: () => "hello", code: P },
  { name: "payload a number", event: "insert_value", payload: () => 42, code: P },
  { name: "payload null", event: "insert_value", payload: () => null, code: P },
  { name: "payload an array", event: "insert_value", payload: () => [ins([x(0)])], code: P },
  { name: "payload an empty object", event: "insert_value", payload: () => ({}), code: P },
  { name: "epoch a number", event: "insert_value", payload: () => ({ epoch: 123, version: VERSION, updates: [{ clientID: "bad", changes: [x(0)] }] }), code: P },
  { name: "epoch missing", event: "insert_value", payload: () => ({ version: VERSION, updates: [{ clientID: "bad", changes: [x(0)] }] }), code: P },
  { name: "version a string", event: "insert_value", payload: () => insVersion(String(VERSION)), code: P },
  { name: "version negative", event: "insert_value", payload: () => insVersion(-1), code: P },
  { name: "version fractional", event: "insert_value", payload: () => insVersion(1.5), code: P },
  { name: "version NaN (null on the wire)", event: "insert_value", payload: () => insVersion(NaN), code: P },
  { name: "version the string NaN", event: "insert_value", payload: () => insVersion("NaN"), code: P },
  { name: "version beyond MAX_SAFE_INTEGER", event: "insert_value", payload: () => insVersion(2 ** 53 + 2), code: P },
  { name: "version 1e300", event: "insert_value", payload: () => insVersion(1e300), code: P },
  { name: "version missing", event: "insert_value", payload: () => ({ epoch, updates: [{ clientID: "bad", changes: [x(0)] }] }), code: P },
  { name: "version ahead of the server", event: "insert_value", payload: () => insVersion(VERSION + 1), code: "invalid_version" },
  { name: "version MAX_SAFE_INTEGER (ahead)", event: "insert_value", payload: () => insVersion(Number.MAX_SAFE_INTEGER), code: "invalid_version" },
  { name: "epoch of another incarnation", event: "insert_value", payload: () => ({ ...(insVersion(VERSION) as object), epoch: randomUUID() }), code: "invalid_version" },
  // updates
  { name: "updates missing", event: "insert_value", payload: () => ({ epoch, version: VERSION }), code: P },
  { name: "updates empty", event: "insert_value", payload: () => insUpdates([]), code: P },
  { name: "updates an object", event: "insert_value", payload: () => insUpdates({ clientID: "bad", changes: [x(0)] }), code: P },
  { name: `updates: ${MAX_UPDATES + 1} (> MAX_UPDATES_PER_BATCH)`, event: "insert_value", payload: () => insUpdates(manyUpdates(MAX_UPDATES + 1)), code: P },
  { name: "update a string", event: "insert_value", payload: () => insUpdates(["x"]), code: P },
  { name: "update null", event: "insert_value", payload: () => insUpdates([null]), code: P },
  { name: "mixed clientIDs in one batch", event: "insert_value", payload: () => insUpdates([{ clientID: "c1", changes: [x(0)] }, { clientID: "c2", changes: [x(0)] }]), code: P },
  { name: "clientID empty", event: "insert_value", payload: () => ins([x(0)], ""), code: P },
  { name: "clientID a number", event: "insert_value", payload: () => ins([x(0)], 7), code: P },
  { name: "clientID too long (129)", event: "insert_value", payload: () => ins([x(0)], "c".repeat(129)), code: P },
  { name: "clientID missing", event: "insert_value", payload: () => insUpdates([{ changes: [x(0)] }]), code: P },
  // changes
  { name: "changes missing", event: "insert_value", payload: () => insUpdates([{ clientID: "bad" }]), code: P },
  { name: "changes empty", event: "insert_value", payload: () => ins([]), code: P },
  { name: "changes an object", event: "insert_value", payload: () => ins(x(0)), code: P },
  { name: `changes: ${MAX_CHANGES + 1} (> MAX_CHANGES_PER_UPDATE)`, event: "insert_value", payload: () => ins([x(0), x(4), x(5), x(6), x(7), x(8)]), code: P },
  { name: "change a number", event: "insert_value", payload: () => ins([3]), code: P },
  { name: "change null", event: "insert_value", payload: () => ins([null]), code: P },
  { name: "negative from", event: "insert_value", payload: () => ins([{ from: -1, to: 0, insert: "x" }]), code: P },
  { name: "fractional from", event: "insert_value", payload: () => ins([{ from: 0.5, to: 1, insert: "x" }]), code: P },
  { name: "from a string", event: "insert_value", payload: () => ins([{ from: "0", to: 1, insert: "x" }]), code: P },
  { name: "to missing", event: "insert_value", payload: () => ins([{ from: 0, insert: "x" }]), code: P },
  { name: "to < from", event: "insert_value", payload: () => ins([{ from: 5, to: 4, insert: "x" }]), code: P },
  { name: "to > doc length", event: "insert_value", payload: () => ins([x(8, TEXT.length + 1, "")]), code: P },
  { name: "insertion past the end", event: "insert_value", payload: () => ins([x(TEXT.length + 1)]), code: P },
  { name: "overlapping changes", event: "insert_value", payload: () => ins([x(4, 6), x(5, 7)]), code: P },
  { name: "unsorted changes", event: "insert_value", payload: () => ins([x(6), x(4)]), code: P },
  { name: "insert a number", event: "insert_value", payload: () => ins([{ from: 0, to: 0, insert: 5 }]), code: P },
  { name: "insert missing", event: "insert_value", payload: () => ins([{ from: 0, to: 1 }]), code: P },
  { name: "insert with a lone high surrogate", event: "insert_value", payload: () => ins([x(0, 0, "\uD83D")]), code: P },
  { name: "insert with a lone low surrogate", event: "insert_value", payload: () => ins([x(0, 0, "z\uDE00z")]), code: P },
  { name: "delete [2,3) splits a surrogate pair", event: "insert_value", payload: () => ins([x(2, 3, "")]), code: P },
  { name: "insertion at 2 splits a surrogate pair", event: "insert_value", payload: () => ins([x(2)]), code: P },
  { name: "replace [0,2) ends inside a surrogate pair", event: "insert_value", payload: () => ins([x(0, 2, "y")]), code: P },
  { name: "a change that changes nothing", event: "insert_value", payload: () => ins([x(1, 1, "")]), code: P },
  { name: "valid update then one out of range for the doc after it (whole batch refused)", event: "insert_value", payload: () => insUpdates([{ clientID: "bad", changes: [x(10)] }, { clientID: "bad", changes: [x(12)] }]), code: P },
  { name: "valid update then a lone surrogate (whole batch refused)", event: "insert_value", payload: () => insUpdates([{ clientID: "bad", changes: [x(0)] }, { clientID: "bad", changes: [x(0, 0, "\uDC00")] }]), code: P },
  { name: "one update beyond MAX_DOC_LENGTH", event: "insert_value", payload: () => ins([x(10, 10, "y".repeat(MAX_DOC - TEXT.length + 1))]), code: "doc_too_large" },
  { name: "a batch whose updates together exceed MAX_DOC_LENGTH", event: "insert_value", payload: () => insUpdates([{ clientID: "bad", changes: [x(0, 0, "y".repeat(25))] }, { clientID: "bad", changes: [x(0, 0, "z".repeat(25))] }]), code: "doc_too_large" },
  // create_selection
  { name: "payload a string", event: "create_selection", payload: () => "sel", code: P },
  { name: "payload null", event: "create_selection", payload: () => null, code: P },
  { name: "payload an array", event: "create_selection", payload: () => [{ anchor: 0, head: 1 }], code: P },
  { name: "selections missing", event: "create_selection", payload: () => ({}), code: P },
  { name: "selections empty", event: "create_selection", payload: () => ({ selections: [] }), code: P },
  { name: "selections an object", event: "create_selection", payload: () => ({ selections: { anchor: 0, head: 1 } }), code: P },
  { name: `selections: ${MAX_SELECTIONS + 1} (> MAX_SELECTIONS)`, event: "create_selection", payload: () => ({ selections: Array.from({ length: MAX_SELECTIONS + 1 }, () => ({ anchor: 0, head: 0 })) }), code: P },
  { name: "selection a number", event: "create_selection", payload: () => ({ selections: [1] }), code: P },
  { name: "selection null", event: "create_selection", payload: () => ({ selections: [null] }), code: P },
  { name: "negative anchor", event: "create_selection", payload: () => ({ selections: [{ anchor: -1, head: 0 }] }), code: P },
  { name: "fractional head", event: "create_selection", payload: () => ({ selections: [{ anchor: 0, head: 0.5 }] }), code: P },
  { name: "head a string", event: "create_selection", payload: () => ({ selections: [{ anchor: 0, head: "1" }] }), code: P },
  { name: "anchor missing", event: "create_selection", payload: () => ({ selections: [{ head: 1 }] }), code: P },
  { name: "second range bad", event: "create_selection", payload: () => ({ selections: [{ anchor: 0, head: 1 }, { anchor: 2, head: -3 }] }), code: P },
  // pull
  { name: "payload null", event: "pull", payload: () => null, code: P },
  { name: "payload a string", event: "pull", payload: () => "0", code: P },
  { name: "epoch missing", event: "pull", payload: () => ({ version: 0 }), code: P },
  { name: "epoch a number", event: "pull", payload: () => ({ epoch: 1, version: 0 }), code: P },
  { name: "version missing", event: "pull", payload: () => ({ epoch }), code: P },
  { name: "version a string", event: "pull", payload: () => ({ epoch, version: "0" }), code: P },
  { name: "version negative", event: "pull", payload: () => ({ epoch, version: -1 }), code: P },
  { name: "version fractional", event: "pull", payload: () => ({ epoch, version: 0.5 }), code: P },
  { name: "version beyond MAX_SAFE_INTEGER", event: "pull", payload: () => ({ epoch, version: 2 ** 53 + 2 }), code: P },
  { name: "version ahead of the server", event: "pull", payload: () => ({ epoch, version: VERSION + 1 }), code: "invalid_version" },
  { name: "epoch of another incarnation", event: "pull", payload: () => ({ epoch: randomUUID(), version: 0 }), code: "invalid_version" },
];

function assertRefused(ack: unknown, code: Code, label: string): void {
  assert.ok(typeof ack === "object" && ack !== null, `${label}: ack is not an object: ${JSON.stringify(ack)}`);
  assert.deepEqual(Object.keys(ack).sort(), ["error", "ok"], `${label}: ack ${JSON.stringify(ack)}`);
  const { ok, error } = ack as { ok: unknown; error: { code: unknown; message: unknown } };
  assert.equal(ok, false, label);
  // doc_too_large also carries the limit (MAX_DOC_LENGTH)
  const keys = code === "doc_too_large" ? ["code", "limit", "message"] : ["code", "message"];
  assert.deepEqual(Object.keys(error).sort(), keys, `${label}: error ${JSON.stringify(error)}`);
  assert.equal(error.code, code, `${label}: ${JSON.stringify(error)}`);
  assert.equal(typeof error.message, "string");
  assert.ok((error.message as string).length > 0, `${label}: empty message`);
}

/**
 * Checks nothing changed: the observer saw no broadcast before `sender`'s probe selection, its
 * pull from 0 is the baseline, and a fresh connection sees the baseline text and version.
 */
async function assertUntouched(sender: ClientSocket, observer: ClientSocket, seen: string[]): Promise<void> {
  const probe = nextEvent(observer, "create_selection");
  assert.deepEqual(await emitAck(sender, "create_selection", { selections: [{ anchor: 0, head: 1 }] }), { ok: true });
  assert.deepEqual(await probe, { sender: sender.id, selections: [{ anchor: 0, head: 1 }] });
  assert.deepEqual(seen, ["create_selection"], `the observer received ${JSON.stringify(seen)}`);
  assert.deepEqual(await emitAck(observer, "pull", { epoch, version: 0 }), baselinePull);
  const fresh = await connectSocket(url, codespace);
  fresh.socket.close();
  assert.equal(fresh.connected.code, TEXT);
  assert.equal(fresh.connected.version, VERSION);
  assert.equal(fresh.connected.epoch, epoch);
}

/** Sender and observer sockets in the codespace; the observer records the events it receives. */
async function pair(): Promise<{ sender: ClientSocket; observer: ClientSocket; seen: string[]; close(): void }> {
  const [a, b] = await Promise.all([connectSocket(url, codespace), connectSocket(url, codespace)]);
  const seen: string[] = [];
  b.socket.onAny((name: string) => seen.push(name));
  return { sender: a.socket, observer: b.socket, seen, close: () => (a.socket.close(), b.socket.close()) };
}

describe("malformed payloads are refused and change nothing", () => {
  test("control: the same codespace accepts well-formed insert_value, create_selection and pull, and the checks below see the change", async () => {
    // Without this, a server that refused everything (or checks that saw nothing) would pass every case.
    const { sender, observer, seen, close } = await pair();
    try {
      const broadcast = nextEvent(observer, "insert_value");
      assert.deepEqual(await emitAck(sender, "insert_value", ins([x(10)], "good")), { ok: true, version: VERSION + 1 });
      assert.deepEqual(await broadcast, { version: VERSION + 1, clientID: "good", sender: sender.id, changes: [x(10)] });
      assert.deepEqual(await emitAck(sender, "create_selection", { selections: [{ anchor: 0, head: 3 }] }), { ok: true });
      const pulled = await emitAck(sender, "pull", { epoch, version: VERSION });
      assert.deepEqual(pulled, { ok: true, version: VERSION + 1, updates: [{ version: VERSION + 1, clientID: "good", changes: [x(10)] }] });
      await assert.rejects(assertUntouched(sender, observer, seen), assert.AssertionError);
    } finally {
      close();
    }
  });
  for (const c of cases) {
    test(`${c.event}: ${c.name} -> ${c.code}`, async () => {
      const { sender, observer, seen, close } = await pair();
      try {
        assertRefused(await emitAck(sender, c.event, c.payload()), c.code, `${c.event} ${c.name}`);
        await assertUntouched(sender, observer, seen);
      } finally {
        close();
      }
    });
  }
});

describe("without an ack callback", () => {
  const noAck: [Case["event"], unknown][] = [
    ["insert_value", { epoch: "nope", version: -1, updates: "x" }],
    ["create_selection", { selections: [] }],
    ["pull", { version: 0 }],
  ];
  for (const [event, payload] of noAck) {
    test(`${event}: a failing event without a callback gets operation_error`, async () => {
      const { sender, observer, seen, close } = await pair();
      try {
        const err = nextEvent(sender, "operation_error");
        sender.emit(event, payload as never);
        const got = await err;
        assert.equal(got.event, event);
        assert.equal(got.error.code, "invalid_payload");
        assert.equal(typeof got.error.message, "string");
        assert.ok(got.error.message.length > 0);
        await assertUntouched(sender, observer, seen);
      } finally {
        close();
      }
    });
  }

  test("insert_value with neither payload nor callback gets operation_error", async () => {
    const { sender, observer, seen, close } = await pair();
    try {
      const err = nextEvent(sender, "operation_error");
      (sender as unknown as { emit(e: string): void }).emit("insert_value");
      const got = await err;
      assert.equal(got.event, "insert_value");
      assert.equal(got.error.code, "invalid_payload");
      await assertUntouched(sender, observer, seen);
    } finally {
      close();
    }
  });
});

describe("a callback but no payload", () => {
  for (const event of ["insert_value", "create_selection", "pull"] as const) {
    test(`raw emit("${event}", callback) gets a defined invalid_payload ack`, async () => {
      const { sender, observer, seen, close } = await pair();
      try {
        const ack = await new Promise<unknown>((resolve, reject) => {
          (sender.timeout(5000) as unknown as { emit(e: string, cb: (err: Error | null, res: unknown) => void): void }).emit(
            event,
            (err, res) => (err ? reject(new Error(`no ack for ${event}`)) : resolve(res)),
          );
        });
        assertRefused(ack, "invalid_payload", `${event} without payload`);
        await assertUntouched(sender, observer, seen);
      } finally {
        close();
      }
    });
  }
});
