/**
 * Fuzz (fast-check): thousands of random and mutated payloads for every client event
 * (insert_value, create_selection, pull), with and without an ack callback, against an in-process
 * server. The server never crashes, answers each with `{ ok: true, ... }` or a defined error code,
 * and never corrupts the document: a model that applies exactly the acknowledged batches, an
 * observer socket that applies the broadcasts, and a fresh socket's snapshot all agree at the end.
 */
import { after, afterEach, before, beforeEach, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import type { CodespaceServer } from "../server/index.js";
import { ErrorCodes } from "../protocol/errors.js";
import type { InsertValueBroadcast, WireChange } from "../protocol/events.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, emitAck, type ClientSocket } from "./helpers/socket.js";
import { applyWire } from "./helpers/wire.js";

const RUNS_PER_PROPERTY = 1500;
const MAX_DOC = 2000;
const CODES = new Set<string>(Object.values(ErrorCodes));

let srv: CodespaceServer;
let url: string;
/** Each test fuzzes a codespace of its own (beforeEach), with these sockets and this model. */
let codespace = "";
let writer: ClientSocket;
let observer: ClientSocket;
let epoch = "";
/** What the server must hold: the text after every acknowledged batch, and its version. */
let model = "";
let version = 0;
let broadcasts: InsertValueBroadcast[] = [];

before(async () => {
  ({ server: srv, url } = await startInProcessServer({
    MAX_DOC_LENGTH: String(MAX_DOC),
    MAX_UPDATES_PER_BATCH: "8",
    MAX_CHANGES_PER_UPDATE: "8",
    MAX_SELECTIONS: "8",
    RATE_LIMIT_EVENTS: "1000000",
  }));
});

beforeEach(async () => {
  codespace = `tmp-fuzz-${randomUUID()}`;
  const w = await connectSocket(url, codespace);
  writer = w.socket;
  epoch = w.connected.epoch;
  observer = (await connectSocket(url, codespace)).socket;
  const received: InsertValueBroadcast[] = (broadcasts = []);
  observer.on("insert_value", (u: InsertValueBroadcast) => received.push(u));
  model = "";
  version = 0;
});

afterEach(() => {
  writer?.close();
  observer?.close();
});

after(async () => {
  await srv?.close();
});

/**
 * The document is intact: the observer's broadcasts (contiguous versions), a fresh snapshot and the
 * model of acknowledged batches agree, and the text is well formed and within MAX_DOC_LENGTH.
 */
async function assertIntact(): Promise<void> {
  // a round trip on each socket: every broadcast sent before it has arrived
  assert.equal((await emitAck(writer, "pull", { epoch, version: 0 })).ok, true);
  assert.equal((await emitAck(observer, "pull", { epoch, version: 0 })).ok, true);
  const byVersion = [...broadcasts].sort((a, b) => a.version - b.version);
  let fromBroadcasts = "";
  byVersion.forEach((u, i) => {
    assert.equal(u.version, i + 1, "broadcast versions are contiguous");
    fromBroadcasts = applyWire(fromBroadcasts, u.changes);
  });
  const fresh = await connectSocket(url, codespace);
  fresh.socket.close();
  assert.equal(fresh.connected.code, fromBroadcasts);
  assert.equal(fresh.connected.version, byVersion.length);
  assert.ok(fresh.connected.code.isWellFormed(), "the document holds a lone surrogate");
  assert.ok(fresh.connected.code.length <= MAX_DOC);
  if (fresh.connected.version === version) assert.equal(fresh.connected.code, model);
  else assert.ok(fresh.connected.version > version, "acknowledged batches went missing");
}

/** Asserts the shape of an answer: ok, or a defined code with a message. */
function assertAnswer(res: unknown): { ok: boolean } {
  assert.equal(typeof res, "object");
  const r = res as { ok?: unknown; error?: { code?: unknown; message?: unknown } };
  if (r.ok === true) return { ok: true };
  assert.equal(r.ok, false, JSON.stringify(res));
  assert.ok(CODES.has(String(r.error?.code)), `undefined code in ${JSON.stringify(res)}`);
  assert.equal(typeof r.error?.message, "string");
  return { ok: false };
}

// ---- generators ------------------------------------------------------------------------------

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.constantFrom("\ud83d", "\ude00", "😀", "\u0000", "\r\n", "a".repeat(3000)),
);
const pos = fc.oneof(
  fc.integer({ min: 0, max: 40 }),
  fc.constantFrom(-1, 1.5, NaN, Infinity, 2 ** 53, MAX_DOC + 1, "3", null),
);
const anyValue = fc.oneof(fc.anything({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }));

/** A change near-valid against the current model: the interesting ones are inside the document. */
const change = fc.record(
  { from: pos, to: pos, insert: fc.oneof(text, anyValue) },
  { requiredKeys: [] },
);
/** Sorted in-range changes (often valid). */
const validChanges = fc
  .array(fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 5 })), { minLength: 1, maxLength: 4 })
  .map((specs) => {
    const len = model.length;
    const pts = specs.flatMap(([a, b]) => [a % (len + 1), b % (len + 1)]).sort((x, y) => x - y);
    return specs.map(([, , insert], i) => ({ from: pts[2 * i]!, to: pts[2 * i + 1]!, insert: insert || "z" }));
  });

const update = fc.record({
  clientID: fc.oneof(fc.constant("fz"), fc.constant("other"), anyValue, fc.string({ minLength: 120, maxLength: 140 })),
  changes: fc.oneof(validChanges, fc.array(change, { maxLength: 10 }), anyValue),
});

/** Mutations of a valid insert_value. */
type Mutation = (p: Record<string, unknown>) => unknown;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>((p) => p),
  fc.constantFrom<Mutation>(
    (p) => ({ ...p, epoch: undefined }),
    (p) => ({ ...p, version: undefined }),
    (p) => ({ ...p, updates: undefined }),
    (p) => ({ ...p, version: (p.version as number) + 1 }),
    (p) => ({ ...p, version: Math.max(0, (p.version as number) - 1) }),
    (p) => ({ ...p, epoch: "not-the-epoch" }),
    (p) => ({ ...p, updates: [] }),
    (p) => [p],
    (p) => JSON.stringify(p),
  ),
  anyValue.map<Mutation>((v) => (p) => ({ ...p, version: v })),
  anyValue.map<Mutation>((v) => (p) => ({ ...p, epoch: v })),
  anyValue.map<Mutation>((v) => (p) => ({ ...p, updates: v })),
  anyValue.map<Mutation>((v) => (p) => ({ ...p, extra: v })),
  anyValue.map<Mutation>((v) => () => v),
);

const insertPayload = fc
  .tuple(fc.array(update, { minLength: 1, maxLength: 3 }), mutation)
  .map(([updates, mutate]) => mutate({ epoch, version, updates }));

const selectionPayload = fc.oneof(
  fc.record({ selections: fc.array(fc.record({ anchor: pos, head: pos }, { requiredKeys: [] }), { maxLength: 10 }) }),
  fc.record({ selections: anyValue }),
  anyValue,
);

const pullPayload = fc.constant(null).chain(() =>
  fc.oneof(
    fc.record({ epoch: fc.oneof(fc.constant(epoch), anyValue), version: fc.oneof(fc.integer({ min: 0, max: 100 }), anyValue) }),
    anyValue,
  ),
);

// ---- properties --------------------------------------------------------------------------------

async function sendInsert(payload: unknown): Promise<void> {
  const res = await emitAck(writer, "insert_value", payload);
  if (!assertAnswer(res).ok) return;
  // accepted: the payload was a valid batch at the server's version; the model follows it
  const p = payload as { version: number; updates: { changes: WireChange[] }[] };
  const after = (res as { version: number }).version;
  if (p.version === version) {
    for (const u of p.updates) model = applyWire(model, u.changes);
    assert.equal(after, p.version + p.updates.length);
    version = after;
    return;
  }
  // an older version with another clientID: legitimately rebased; take the server's history as the model
  rebased++;
  const pulled = (await emitAck(writer, "pull", { epoch, version: 0 })) as { ok: boolean; version: number; code?: string; updates?: { changes: WireChange[] }[] };
  assert.equal(pulled.ok, true);
  model = pulled.code ?? pulled.updates!.reduce((doc, u) => applyWire(doc, u.changes), "");
  version = pulled.version;
  assert.ok(version >= after);
}
let rebased = 0;

describe("fuzz", () => {
  test(`insert_value: ${RUNS_PER_PROPERTY} random and mutated payloads`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constant(null).chain(() => insertPayload), async (payload) => sendInsert(payload)),
      { numRuns: RUNS_PER_PROPERTY },
    );
    assert.ok(version > 10, `only ${version} batches accepted: the generator is too hostile to test acceptance`);
    await assertIntact();
  });

  test(`create_selection: ${RUNS_PER_PROPERTY} payloads`, async () => {
    await fc.assert(
      fc.asyncProperty(selectionPayload, async (payload) => {
        assertAnswer(await emitAck(writer, "create_selection", payload));
      }),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  test(`pull: ${RUNS_PER_PROPERTY} payloads`, async () => {
    // a history to pull from (versions 1..20)
    for (let v = 0; v < 20; v++) {
      await sendInsert({ epoch, version, updates: [{ clientID: "seed", changes: [{ from: 0, to: 0, insert: "s" }] }] });
    }
    assert.equal(version, 20);
    await fc.assert(
      fc.asyncProperty(pullPayload, async (payload) => {
        assertAnswer(await emitAck(writer, "pull", payload));
      }),
      { numRuns: RUNS_PER_PROPERTY },
    );
  });

  test("events without a callback, extra arguments, unknown events: operation_error with a defined code, or nothing", async () => {
    const errors: { event: string; error: { code: string } }[] = [];
    writer.on("operation_error", (e) => errors.push(e));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("insert_value", "create_selection", "pull", "unknown_event", "connected", "disconnect_me"),
        fc.array(anyValue, { maxLength: 3 }),
        async (event, args) => {
          (writer as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
        },
      ),
      { numRuns: 500 },
    );
    // a round trip after everything sent: the server is alive and answered in order
    assertAnswer(await emitAck(writer, "pull", { epoch, version }));
    for (const e of errors) assert.ok(CODES.has(e.error.code), JSON.stringify(e));
    assert.equal(writer.connected, true);
    await assertIntact();
  });
});
