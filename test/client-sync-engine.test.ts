/**
 * The client's sync engine alone (client/sync-engine.ts), driven message by message through a
 * scripted transport (the test plays the server: it answers each request when it chooses), so each
 * state of the engine (`phase`) is observed: loading, sending, confirming, pulling on a gap,
 * backoff after a transient refusal, offline and resync, reset on a new epoch, and the edits never
 * sent carried onto the snapshot of a `version_too_old` reset.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { SyncEngine, type SyncPhase, type SyncTransport } from "../client/sync-engine.js";
import type { CodespaceClientError } from "../client/errors.js";
import type { ConnectedPayload, InsertValueAck, InsertValuePayload, PullAck, PullPayload, VersionedUpdate } from "../protocol/events.js";

interface Pending<P, A> {
  payload: P;
  answer(ack: A): void;
  fail(err: Error): void;
}

/** A transport whose requests wait in queues until the test answers them. */
class ScriptedTransport implements SyncTransport {
  readonly inserts: Pending<InsertValuePayload, InsertValueAck>[] = [];
  readonly pulls: Pending<PullPayload, PullAck>[] = [];
  reconnects = 0;
  #waiters: (() => void)[] = [];
  insertValue(payload: InsertValuePayload): Promise<InsertValueAck> {
    return this.#queue(this.inserts, payload);
  }
  pull(payload: PullPayload): Promise<PullAck> {
    return this.#queue(this.pulls, payload);
  }
  reconnect(): void {
    this.reconnects++;
  }
  #queue<P, A>(queue: Pending<P, A>[], payload: P): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      queue.push({ payload, answer: resolve, fail: reject });
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  /** Resolves once `queue` holds a request (microtasks and timers run meanwhile). */
  async next<P, A>(queue: Pending<P, A>[], timeoutMs = 5000): Promise<Pending<P, A>> {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error("no request came");
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return queue.shift()!;
  }
}

const EPOCH = "e1";
const connected = (version: number, code: string, epoch = EPOCH): ConnectedPayload => ({
  id: "sock",
  codespace: "tmp-x",
  mode: "edit",
  epoch,
  version,
  code,
  users: [],
  ttl: 3600,
});
const flushMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

function engine(opts: { gapTimeoutMs?: number } = {}): { e: SyncEngine; t: ScriptedTransport; errors: CodespaceClientError[] } {
  const t = new ScriptedTransport();
  const e = new SyncEngine(t, { clientID: "me", gapTimeoutMs: opts.gapTimeoutMs ?? 20 });
  const errors: CodespaceClientError[] = [];
  e.on("error", (err) => errors.push(err));
  return { e, t, errors };
}

test("load, send one batch, confirm by the broadcast: unloaded -> online sending -> confirming -> idle", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  assert.equal(e.phase.kind, "unloaded");
  e.connected(connected(3, "abc"));
  assert.deepEqual(e.phase, { kind: "online", pull: "idle", push: { kind: "idle" } });
  assert.equal(e.version, 3);
  e.applyLocal([{ from: 3, to: 3, insert: "d" }]);
  e.applyLocal([{ from: 0, to: 1, insert: "" }]);
  const batch = await t.next(t.inserts);
  assert.deepEqual(batch.payload, { epoch: EPOCH, version: 3, updates: [{ clientID: "me", changes: [{ from: 0, to: 1, insert: "" }, { from: 3, to: 3, insert: "d" }] }] });
  const phase = e.phase as SyncPhase;
  assert.ok(phase.kind === "online" && phase.push.kind === "sending");
  // at most one batch in flight
  e.applyLocal([{ from: 0, to: 0, insert: "X" }]);
  await flushMicrotasks();
  assert.equal(t.inserts.length, 0);
  batch.answer({ ok: true, version: 4 });
  await flushMicrotasks();
  assert.deepEqual(e.phase, { kind: "online", pull: "idle", push: { kind: "confirming", version: 4 } });
  assert.equal(t.inserts.length, 0, "sent again before the ack's version was reached");
  const synced = e.whenSynced();
  e.received({ version: 4, clientID: "me", changes: batch.payload.updates[0]!.changes });
  const second = await t.next(t.inserts);
  assert.deepEqual(second.payload.updates, [{ clientID: "me", changes: [{ from: 0, to: 0, insert: "X" }] }]);
  assert.equal(second.payload.version, 4);
  second.answer({ ok: true, version: 5 });
  e.received({ version: 5, clientID: "me", changes: [{ from: 0, to: 0, insert: "X" }] });
  await synced;
  assert.equal(e.state.doc.toString(), "Xbcd");
  assert.equal(e.pending, 0);
  assert.deepEqual(errors, []);
});

test("broadcasts out of order are applied in version order; a gap lasting gapTimeoutMs is pulled", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected(connected(0, ""));
  const u = (version: number, insert: string): VersionedUpdate => ({ version, clientID: "other", changes: [{ from: 0, to: 0, insert }] });
  e.received(u(2, "b"));
  assert.equal(e.version, 0);
  e.received(u(1, "a"));
  assert.equal(e.version, 2);
  assert.equal(e.state.doc.toString(), "ba");
  e.received(u(4, "d")); // 3 is lost
  const pull = await t.next(t.pulls);
  assert.deepEqual(pull.payload, { epoch: EPOCH, version: 2 });
  assert.deepEqual(e.phase, { kind: "online", pull: "pulling", push: { kind: "idle" } });
  pull.answer({ ok: true, version: 4, updates: [u(3, "c"), u(4, "d")] });
  await e.waitForVersion(4);
  assert.equal(e.state.doc.toString(), "dcba");
  assert.deepEqual(e.phase, { kind: "online", pull: "idle", push: { kind: "idle" } });
});

test("a transient refusal waits in backoff, then the batch is resent", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected(connected(0, ""));
  e.applyLocal([{ from: 0, to: 0, insert: "x" }]);
  const first = await t.next(t.inserts);
  first.answer({ ok: false, error: { code: "store_unavailable", message: "down" } });
  await flushMicrotasks();
  assert.deepEqual(e.phase, { kind: "online", pull: "idle", push: { kind: "backoff" } });
  const again = await t.next(t.inserts);
  assert.deepEqual(again.payload, first.payload);
});

test("after store_unavailable (the commit may have applied) the batch is resent exactly as sent, later edits beside it", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected(connected(0, ""));
  e.applyLocal([{ from: 0, to: 0, insert: "a" }]);
  const first = await t.next(t.inserts);
  first.answer({ ok: false, error: { code: "store_unavailable", message: "timeout" } });
  await flushMicrotasks();
  e.applyLocal([{ from: 1, to: 1, insert: "b" }]);
  const again = await t.next(t.inserts);
  // the server may hold "a" (a timeout after Redis ran the commit): only the same update is
  // recognised as a resend, so it is not merged with "b"
  assert.deepEqual(again.payload.updates, [
    { clientID: "me", changes: [{ from: 0, to: 0, insert: "a" }] },
    { clientID: "me", changes: [{ from: 1, to: 1, insert: "b" }] },
  ]);
});

test("a disconnect while sending goes offline; the next connected at the same version resends the batch", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected(connected(0, "ab"));
  e.applyLocal([{ from: 2, to: 2, insert: "c" }]);
  const lost = await t.next(t.inserts);
  e.disconnected("transport close");
  assert.deepEqual(e.phase, { kind: "offline", reload: false });
  lost.fail(new Error("socket has been disconnected")); // the transport's rejection: ignored
  await flushMicrotasks();
  assert.equal(t.reconnects, 0);
  e.connected(connected(0, "ab"));
  const resent = await t.next(t.inserts);
  assert.deepEqual(resent.payload, lost.payload);
});

test("a small batch lost with the connection again and again (a flaky network) is resent each time, never taken for one above the server's limit", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  const fatal: unknown[] = [];
  e.on("fatal", (err) => fatal.push(err));
  e.connected(connected(0, ""));
  e.applyLocal([{ from: 0, to: 0, insert: "x" }]);
  for (let i = 0; i < 5; i++) {
    await t.next(t.inserts);
    e.disconnected("transport close");
    e.connected(connected(0, ""));
  }
  const last = await t.next(t.inserts);
  assert.deepEqual(last.payload.updates, [{ clientID: "me", changes: [{ from: 0, to: 0, insert: "x" }] }]);
  assert.deepEqual(fatal, []);
  assert.deepEqual(errors, []);
  assert.notEqual(e.phase.kind, "closed");
});

test("limits announced in connected are used; values that are not positive integers are ignored (defaults)", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected({ ...connected(0, "abcdef"), limits: { maxChangesPerUpdate: 2, maxChangesPerBatch: 3, maxUpdatesPerBatch: 1000, maxMessageBytes: 4096 } });
  e.applyLocal([0, 2, 4].map((at) => ({ from: at, to: at + 1, insert: "X" })));
  const first = await t.next(t.inserts);
  assert.deepEqual(first.payload.updates.map((u) => u.changes.length), [2, 1], "at most 2 changes per update");
  const { e: odd, t: oddT } = engine();
  const bad = { maxChangesPerUpdate: 0, maxChangesPerBatch: -5, maxUpdatesPerBatch: "x", maxMessageBytes: 1.5 } as unknown as ConnectedPayload["limits"];
  odd.connected({ ...connected(0, "abcdef"), limits: bad });
  odd.applyLocal([0, 2, 4].map((at) => ({ from: at, to: at + 1, insert: "X" })));
  const batch = await oddT.next(oddT.inserts);
  assert.deepEqual(batch.payload.updates.map((u) => u.changes.length), [3]);
});

test("a connected payload with a new epoch resets the document and drops unconfirmed changes", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  const resets: unknown[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(5, "old"));
  e.applyLocal([{ from: 0, to: 0, insert: "mine " }]);
  await t.next(t.inserts);
  e.disconnected("transport close");
  e.connected(connected(0, "new", "e2"));
  assert.deepEqual(resets, [{ reason: "epoch", version: 0, epoch: "e2", dropped: 1, kept: 0 }]);
  assert.equal(e.state.doc.toString(), "new");
  assert.equal(e.epoch, "e2");
  assert.equal(e.pending, 0);
});

test("version_too_old answered with a snapshot: edits typed offline (never sent) are carried onto it and sent; the batch in flight is dropped", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  const resets: unknown[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(5, "hello world"));
  e.applyLocal([{ from: 0, to: 0, insert: "A" }]);
  const inFlight = await t.next(t.inserts);
  e.disconnected("transport close");
  // typed offline, on "Ahello world": never sent
  e.applyLocal([{ from: 6, to: 6, insert: " there" }]);
  e.applyLocal([{ from: 13, to: 14, insert: "W" }]);
  assert.equal(e.state.doc.toString(), "Ahello there World");
  e.connected(connected(900, "Ahello big world"));
  const pull = await t.next(t.pulls);
  assert.deepEqual(pull.payload, { epoch: EPOCH, version: 5 });
  assert.equal(t.inserts.length, 0, "nothing is sent while the pull is out");
  // the history no longer reaches version 5: the server answers with its text at 900 (which holds
  // the batch that was in flight, and someone else's "big ")
  pull.answer({ ok: true, version: 900, code: "Ahello big world" });
  const carried = await t.next(t.inserts);
  assert.deepEqual(resets, [{ reason: "version_too_old", version: 900, epoch: EPOCH, dropped: 1, kept: 2 }]);
  assert.equal(e.state.doc.toString(), "Ahello there big World", "the offline edits, mapped over the snapshot, once each");
  assert.deepEqual(carried.payload, {
    epoch: EPOCH,
    version: 900,
    updates: [{ clientID: "me", changes: [{ from: 6, to: 6, insert: " there" }, { from: 11, to: 12, insert: "W" }] }],
  });
  assert.notDeepEqual(carried.payload.updates, inFlight.payload.updates);
  assert.deepEqual(errors, []);
});

test("version_too_old refused to a pull reloads from the next connected snapshot and still carries the edits never sent", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  const resets: { reason: string; kept: number; dropped: number }[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(5, "abc"));
  e.disconnected("transport close");
  e.applyLocal([{ from: 1, to: 1, insert: "!" }]);
  e.connected(connected(700, "xabc"));
  const pull = await t.next(t.pulls);
  pull.answer({ ok: false, error: { code: "version_too_old", message: "history too short" } });
  await flushMicrotasks();
  assert.equal(t.reconnects, 1);
  e.connected(connected(701, "xabcy"));
  const carried = await t.next(t.inserts);
  assert.deepEqual(resets.map((r) => [r.reason, r.dropped, r.kept]), [["version_too_old", 0, 1]]);
  assert.equal(e.state.doc.toString(), "xa!bcy");
  assert.deepEqual(carried.payload.updates, [{ clientID: "me", changes: [{ from: 2, to: 2, insert: "!" }] }]);
});

test("a connection back view_only and behind the server drops the edits typed offline at once instead of carrying what can never be sent", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  const resets: { reason: string; kept: number; dropped: number }[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(5, "abc"));
  e.disconnected("transport close");
  e.applyLocal([{ from: 1, to: 1, insert: "!" }]);
  // the site took the edit right away meanwhile: the new handshake says view_only
  e.connected({ ...connected(700, "xabc"), mode: "view_only" });
  await flushMicrotasks();
  assert.deepEqual(resets.map((r) => [r.reason, r.dropped, r.kept]), [["rejected", 1, 0]]);
  assert.equal(e.state.doc.toString(), "xabc", "the same text as the server's and every other client's");
  assert.equal(e.pending, 0);
  assert.equal(e.version, 700);
  assert.deepEqual(errors.map((err) => err.code), ["forbidden"]);
  assert.equal(t.inserts.length + t.pulls.length, 0);
});

test("a desync reload still drops every unconfirmed change (the local copy is not trusted)", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  const resets: { reason: string; kept: number; dropped: number }[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(0, "ab"));
  e.disconnected("transport close");
  e.applyLocal([{ from: 2, to: 2, insert: "c" }]);
  e.connected(connected(0, "ab"));
  e.received({ version: 1, clientID: "other", changes: [{ from: 10, to: 10, insert: "x" }] }); // does not fit
  await flushMicrotasks();
  assert.equal(t.reconnects, 1);
  e.connected(connected(1, "abz"));
  assert.deepEqual(resets.map((r) => [r.reason, r.dropped, r.kept]), [["desync", 1, 0]]);
  assert.equal(e.state.doc.toString(), "abz");
  assert.equal(e.pending, 0);
});

test("a connection back view_only at the same version drops the unconfirmed edits instead of keeping them unsendable", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  const resets: { reason: string; dropped: number; kept: number }[] = [];
  e.on("reset", (r) => resets.push(r));
  e.connected(connected(3, "abc"));
  e.disconnected("transport close");
  e.applyLocal([{ from: 0, to: 0, insert: "mine " }]);
  e.connected({ ...connected(3, "abc"), mode: "view_only" });
  await flushMicrotasks();
  assert.equal(e.state.doc.toString(), "abc", "shows the server's text");
  assert.equal(e.pending, 0);
  assert.deepEqual(resets.map((r) => [r.reason, r.dropped, r.kept]), [["rejected", 1, 0]]);
  assert.deepEqual(errors.map((err) => err.code), ["forbidden"]);
  assert.equal(t.inserts.length, 0);
});

test("an ack that never comes (transport rejects on a live link) drops the connection to resync", { timeout: 10_000 }, async () => {
  const { e, t } = engine();
  e.connected(connected(0, ""));
  e.applyLocal([{ from: 0, to: 0, insert: "x" }]);
  const batch = await t.next(t.inserts);
  batch.fail(new Error("operation has timed out"));
  await flushMicrotasks();
  assert.equal(t.reconnects, 1);
  assert.deepEqual(e.phase, { kind: "offline", reload: false });
});

test("an update that does not fit the document is a desync: error, then reload on a new connection", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  e.connected(connected(0, "ab"));
  e.received({ version: 1, clientID: "other", changes: [{ from: 5, to: 6, insert: "" }] });
  assert.equal(errors[0]?.code, "desync");
  assert.equal(t.reconnects, 1);
  assert.deepEqual(e.phase, { kind: "offline", reload: true });
  e.connected(connected(1, "b"));
  assert.equal(e.state.doc.toString(), "b");
});

test("close() rejects waits and refuses local changes", { timeout: 10_000 }, async () => {
  const { e } = engine();
  e.connected(connected(0, ""));
  const waiting = e.waitForVersion(10);
  e.close(new (await import("../client/errors.js")).CodespaceClientError("closed", "bye"));
  await assert.rejects(waiting, /bye/);
  assert.equal(e.phase.kind, "closed");
  assert.throws(() => e.applyLocal([{ from: 0, to: 0, insert: "x" }]), /closed/);
});

test("a batch (receivedAll) is applied in one go: one change event, confirms own updates, maps unconfirmed ones", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  e.connected(connected(0, "ab"));
  const changes: (string | undefined)[] = [];
  e.on("change", (c) => c.remote && changes.push(c.changes && String(c.changes.length)));
  e.applyLocal([{ from: 2, to: 2, insert: "!" }]);
  const batch = await t.next(t.inserts);
  batch.answer({ ok: true, version: 3 });
  await flushMicrotasks();
  e.applyLocal([{ from: 0, to: 0, insert: "L" }]); // unconfirmed while the batch arrives
  // one commit: another client's update, then mine (rebased over it), versions 1..3
  e.receivedAll([
    { version: 1, clientID: "other", changes: [{ from: 1, to: 1, insert: "x" }] },
    { version: 2, clientID: "me", changes: [{ from: 3, to: 3, insert: "!" }] },
    { version: 3, clientID: "other", changes: [{ from: 0, to: 1, insert: "A" }] },
  ]);
  assert.equal(e.version, 3);
  assert.equal(changes.length, 1, "one change event for the whole batch");
  assert.equal(e.pending, 1, "my first update is confirmed, the later one is still pending");
  assert.equal(e.state.doc.toString(), "LAxb!");
  const next = await t.next(t.inserts);
  assert.deepEqual(next.payload, { epoch: EPOCH, version: 3, updates: [{ clientID: "me", changes: [{ from: 0, to: 0, insert: "L" }] }] });
  assert.deepEqual(errors, []);
});

test("batches keep the per-update gap and duplicate handling: a duplicate run is dropped, a batch after a gap waits, then is pulled", { timeout: 10_000 }, async () => {
  const { e, t, errors } = engine();
  e.connected(connected(0, ""));
  let remoteChanges = 0;
  e.on("change", (c) => c.remote && remoteChanges++);
  const u = (version: number, insert: string): VersionedUpdate => ({ version, clientID: "other", changes: [{ from: 0, to: 0, insert }] });
  e.receivedAll([u(1, "a"), u(2, "b")]);
  assert.equal(e.state.doc.toString(), "ba");
  e.receivedAll([u(1, "a"), u(2, "b")]); // the same commit again (e.g. a resubscribed feed)
  assert.equal(e.version, 2);
  assert.equal(e.state.doc.toString(), "ba");
  assert.equal(remoteChanges, 1, "a duplicate batch changes nothing");
  e.receivedAll([u(5, "e"), u(6, "f")]); // 3..4 missing
  assert.equal(e.version, 2, "a batch after a gap is buffered");
  const pull = await t.next(t.pulls);
  assert.deepEqual(pull.payload, { epoch: EPOCH, version: 2 });
  pull.answer({ ok: true, version: 6, updates: [u(3, "c"), u(4, "d"), u(5, "e"), u(6, "f")] });
  await e.waitForVersion(6);
  assert.equal(e.state.doc.toString(), "fedcba");
  assert.deepEqual(errors, []);
});
