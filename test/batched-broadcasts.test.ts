/**
 * Batched broadcasts (docs/protocol.md, "Batched broadcasts"): a socket whose handshake says
 * `auth.batches: true` receives ONE `insert_value` per commit carrying its updates in version order;
 * a socket without it keeps receiving one `insert_value` per update with exactly the payloads it got
 * before batches existed. Real servers (in-process at port 0, and two processes on a real
 * redis-server), real socket.io-client sockets and the client package (`CodespaceClient`, which asks
 * for batches by default).
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { CodespaceClient } from "../client/index.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { startServersOnRedis, type ServersOnRedis } from "./helpers/servers-on-redis.js";
import { connectSocket, emitAck, expectConnectError, type AnySocket } from "./helpers/socket.js";
import { stored, withTimeout } from "./helpers/editors.js";
import type { InsertValueBatchBroadcast, InsertValueBroadcast, WireUpdate } from "../protocol/events.js";
import { isBatchBroadcast, unbatch } from "../protocol/wire.js";

type Packet = InsertValueBroadcast | InsertValueBatchBroadcast;

/** A raw socket that records every `insert_value` packet it receives, in arrival order. */
interface Recorder {
  socket: AnySocket;
  id: string;
  epoch: string;
  packets: Packet[];
  /** Resolves once a packet reaching `version` (its own, or its batch's last) has arrived. */
  reached(version: number): Promise<void>;
  /** Every update received, unbatched, in arrival order. */
  updates(): InsertValueBroadcast[];
}

async function record(url: string, token: string, batches: boolean | undefined): Promise<Recorder> {
  const auth = batches === undefined ? { token } : { token, batches };
  const { socket, connected } = await connectSocket(url, token, ["websocket"], { auth });
  const packets: Packet[] = [];
  let top = connected.version;
  const waiters: { version: number; resolve(): void }[] = [];
  socket.on("insert_value", (p: Packet) => {
    packets.push(p);
    top = Math.max(top, p.version);
    for (const w of waiters.filter((w) => w.version <= top)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    socket,
    id: connected.id,
    epoch: connected.epoch,
    packets,
    reached: (version) => (top >= version ? Promise.resolve() : withTimeout(new Promise((resolve) => waiters.push({ version, resolve })), 20_000, `version ${version}`)),
    updates: () => packets.flatMap((p) => (isBatchBroadcast(p) ? unbatch(p) : [p])),
  };
}

/** `n` one-insert updates of `clientID`, each appending `${tag}${i}` to a document of `length`. */
function appends(clientID: string, tag: string, n: number, length: number): WireUpdate[] {
  const out: WireUpdate[] = [];
  for (let i = 0; i < n; i++) {
    const insert = `${tag}${i} `;
    out.push({ clientID, changes: [{ from: length, to: length, insert }] });
    length += insert.length;
  }
  return out;
}

/** Parses the Prometheus text of `GET /metrics` into `name{labels} -> value`. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

describe("one process (in-memory store)", () => {
  let srv: InProcessServer;
  const sockets: AnySocket[] = [];
  const clients: CodespaceClient[] = [];
  before(async () => (srv = await startInProcessServer()));
  after(async () => {
    for (const s of sockets) s.close();
    for (const c of clients) c.close();
    await srv?.close();
  });

  test("a batched socket gets one insert_value per commit; a legacy socket one per update, with unchanged payloads; deliveries count packets", async () => {
    const token = `tmp-${randomUUID()}`;
    const writer = await record(srv.url, token, true);
    const batched = await record(srv.url, token, true);
    const legacy = await record(srv.url, token, undefined);
    const legacyFalse = await record(srv.url, token, false);
    sockets.push(writer.socket, batched.socket, legacy.socket, legacyFalse.socket);
    const key = 'codespace_broadcast_deliveries_total{event="insert_value"}';
    const before = (await scrape(srv.url)).get(key) ?? 0;

    const first = appends("w", "a", 3, 0);
    const ack = await emitAck(writer.socket, "insert_value", { epoch: writer.epoch, version: 0, updates: first });
    assert.deepEqual(ack, { ok: true, version: 3 });
    const second = appends("w", "b", 1, "a0 a1 a2 ".length);
    assert.deepEqual(await emitAck(writer.socket, "insert_value", { epoch: writer.epoch, version: 3, updates: second }), { ok: true, version: 4 });
    await Promise.all([batched.reached(4), legacy.reached(4), legacyFalse.reached(4), writer.reached(4)]);

    // A socket's packets arrive in order: once the second commit's packet is in, the first's are all in.
    const sender = writer.id;
    const perUpdate = [...first, ...second].map((u, i) => ({ version: i + 1, clientID: "w", sender, changes: u.changes }));
    assert.deepStrictEqual(legacy.packets, perUpdate, "legacy: one packet per update, today's payload");
    assert.deepStrictEqual(legacyFalse.packets, perUpdate, "batches: false is the legacy form");
    const batches = [
      { version: 3, updates: first.map((u) => ({ clientID: "w", sender, changes: u.changes })) },
      { version: 4, updates: second.map((u) => ({ clientID: "w", sender, changes: u.changes })) },
    ];
    assert.deepStrictEqual(batched.packets, batches, "batched: one packet per commit");
    assert.deepStrictEqual(writer.packets, batches, "the sender gets its own commit as a batch too");
    assert.deepStrictEqual(batched.updates(), perUpdate, "a batch stands for exactly the per-update broadcasts");

    const after = (await scrape(srv.url)).get(key) ?? 0;
    assert.equal(after - before, 2 + 2 + 4 + 4, "one delivery per packet: a batch counts once");
  });

  test("auth.batches that is not a boolean is refused with invalid_payload", async () => {
    const err = await expectConnectError(srv.url, undefined, ["websocket"], { auth: { token: `tmp-${randomUUID()}`, batches: "yes" } });
    assert.equal(err.data?.code, "invalid_payload");
    assert.match(err.message, /auth\.batches/);
  });

  test("CodespaceClients with and without batches converge on the same versions; a multi-update commit is one change for the batched one", async () => {
    const token = `tmp-${randomUUID()}`;
    const cb = await CodespaceClient.connect(srv.url, token, { transports: ["websocket"] });
    const cl = await CodespaceClient.connect(srv.url, token, { transports: ["websocket"], batches: false });
    clients.push(cb, cl);
    for (const c of [cb, cl]) c.on("error", (err) => assert.fail(`client error: ${err.code} ${err.message}`));
    const remote = { cb: 0, cl: 0 };
    cb.on("change", (e) => e.remote && remote.cb++);
    cl.on("change", (e) => e.remote && remote.cl++);
    let packets = 0;
    cb.socket.on("insert_value", () => packets++);

    const writer = await record(srv.url, token, undefined);
    sockets.push(writer.socket);
    assert.deepEqual(await emitAck(writer.socket, "insert_value", { epoch: writer.epoch, version: 0, updates: appends("w", "x", 5, 0) }), { ok: true, version: 5 });
    await Promise.all([cb.waitForVersion(5), cl.waitForVersion(5)]);
    assert.equal(packets, 1, "the batched client received the commit as one packet");
    assert.equal(remote.cb, 1, "and applied it as one change");
    assert.equal(remote.cl, 5, "the legacy client applies one update per packet");
    assert.equal(cb.text, cl.text);

    // concurrent edits from both
    for (let i = 0; i < 30; i++) {
      const c = i % 2 ? cb : cl;
      c.applyLocal([{ from: (i * 7) % (c.text.length + 1), to: (i * 7) % (c.text.length + 1), insert: `${i % 2 ? "B" : "L"}${i}` }]);
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all([cb.whenSynced(), cl.whenSynced()]);
    const { socket, connected } = await connectSocket(srv.url, token);
    socket.close();
    await Promise.all([cb.waitForVersion(connected.version), cl.waitForVersion(connected.version)]);
    assert.equal(cb.version, connected.version);
    assert.equal(cl.version, connected.version);
    assert.equal(cb.text, connected.code);
    assert.equal(cl.text, connected.code);
    assert.ok(packets < connected.version, `fewer packets (${packets}) than versions (${connected.version})`);
  });
});

describe("two processes on Redis", () => {
  let env: ServersOnRedis;
  const sockets: AnySocket[] = [];
  const clients: CodespaceClient[] = [];
  before(async () => (env = await startServersOnRedis(2)));
  after(async () => {
    for (const s of sockets) s.close();
    for (const c of clients) c.close();
    await env?.stop();
  });

  test("batched and legacy sockets on both processes see every commit in version order, the same updates, and converge on the stored code", { timeout: 90_000 }, async () => {
    const [p1, p2] = env.servers as [ServersOnRedis["servers"][number], ServersOnRedis["servers"][number]];
    const token = `tmp-${randomUUID()}`;
    // observers: a batched and a legacy raw socket on each process
    const obs = {
      b1: await record(p1.url, token, true),
      l1: await record(p1.url, token, undefined),
      b2: await record(p2.url, token, true),
      l2: await record(p2.url, token, undefined),
    };
    sockets.push(...Object.values(obs).map((o) => o.socket));
    // editors: a batched client on p1, a legacy one on p2; raw multi-update writers on both
    const cb = await CodespaceClient.connect(p1.url, token, { transports: ["websocket"] });
    const cl = await CodespaceClient.connect(p2.url, token, { transports: ["websocket"], batches: false });
    clients.push(cb, cl);
    for (const c of [cb, cl]) c.on("error", (err) => assert.fail(`client error: ${err.code} ${err.message}`));
    const raw = [await record(p1.url, token, true), await record(p2.url, token, undefined)];
    sockets.push(...raw.map((r) => r.socket));

    /**
     * A raw writer: batches of 4 updates (one clientID per batch), each based on the newest version
     * it has seen; resent (deduplicated by clientID) after a refusal a client may retry.
     */
    const writeRaw = async (r: Recorder, tag: string, rounds: number): Promise<void> => {
      for (let i = 0; i < rounds; i++) {
        for (;;) {
          const version = r.updates().reduce((v, u) => Math.max(v, u.version), 0);
          const res = await emitAck(r.socket, "insert_value", { epoch: r.epoch, version, updates: appends(`${tag}.${i}`, `${tag}${i}.`, 4, 0) });
          if (res.ok) break;
          assert.ok(["invalid_version", "store_unavailable", "rate_limited"].includes(res.error.code), JSON.stringify(res));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const editClient = async (c: CodespaceClient, tag: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const at = c.text.length;
        c.applyLocal([{ from: at, to: at, insert: `${tag}${i} ` }]);
        if (i % 4 === 3) await c.whenSynced();
      }
    };
    await withTimeout(Promise.all([writeRaw(raw[0]!, "r1", 10), writeRaw(raw[1]!, "r2", 10), editClient(cb, "B", 24), editClient(cl, "L", 24)]), 60_000, "edits");
    await Promise.all([cb.whenSynced(), cl.whenSynced()]);
    const { code, version } = await stored(env.redis.client(), token);
    await Promise.all([cb.waitForVersion(version), cl.waitForVersion(version), ...Object.values(obs).map((o) => o.reached(version))]);

    assert.equal(cb.text, code, "batched client converged on the stored code");
    assert.equal(cl.text, code, "legacy client converged on the stored code");
    assert.equal(cb.version, version);
    assert.equal(cl.version, version);
    const expected = obs.l1.updates();
    assert.deepEqual(expected.map((u) => u.version), Array.from({ length: version }, (_, i) => i + 1), "legacy on p1: every version once, in order");
    for (const [name, o] of Object.entries(obs)) {
      assert.deepStrictEqual(o.updates(), expected, `${name}: the same updates in the same order`);
      const batched = name.startsWith("b");
      assert.ok(o.packets.every((p) => isBatchBroadcast(p) === batched), `${name}: only ${batched ? "batches" : "single updates"}`);
    }
    for (const name of ["b1", "b2"] as const) {
      const sizes = obs[name].packets.map((p) => (p as InsertValueBatchBroadcast).updates.length);
      assert.ok(sizes.some((n) => n >= 4), `${name}: multi-update commits arrive as one packet (sizes ${sizes.join(",")})`);
      assert.ok(sizes.every((n) => n > 0));
    }
  });
});
