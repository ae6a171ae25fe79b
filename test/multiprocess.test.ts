/**
 * Several processes, one codespace (docs/protocol.md, "Rules for client authors" and "Ordering"):
 * three raw socket.io-client writers split over two Redis-backed server processes append
 * concurrently, one insert_value in flight each, applying broadcasts in version order. Every
 * writer's text, built from broadcasts, must equal the stored `code`; nothing is lost or doubled.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, emitAck, type ClientSocket } from "./helpers/socket.js";
import { applyWire } from "./helpers/wire.js";
import type { ConnectedPayload, InsertValueBroadcast, WireChange } from "../protocol/events.js";

const EDITS = 50;
const WRITERS = 3;
const TOTAL = EDITS * WRITERS;
/** Bounds a hang (a lost broadcast); not a performance assertion. */
const DEADLINE_MS = 60_000;

let redis: RedisServerHandle;
let raw: Redis;
let p1: ServerProcess;
let p2: ServerProcess;

before(async () => {
  redis = await startRedis();
  raw = redis.client();
  const env = { REDIS_URL: redis.url }; // LOG_LEVEL stays info: the helper waits for the "listening" line
  [p1, p2] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});

after(async () => {
  await Promise.allSettled([p1?.stop(), p2?.stop()]);
  await redis?.stop();
});

/** Appends EDITS tokens, one insert_value in flight, each sent after the previous one's broadcast. */
class Writer {
  readonly clientID: string;
  readonly tokens: string[];
  text: string;
  version: number;
  confirmed = 0;
  okAcks = 0;
  refusals = 0;
  /** Accepted updates that were rebased over others' (acked version beyond base + 1). */
  rebased = 0;
  private inFlight = false;
  private readonly buffer = new Map<number, InsertValueBroadcast>();
  private readonly waiters: { version: number; resolve(): void }[] = [];
  private fail!: (err: Error) => void;
  readonly failed = new Promise<never>((_, reject) => (this.fail = reject));

  constructor(readonly name: string, readonly socket: ClientSocket, readonly connected: ConnectedPayload) {
    this.clientID = `${name}-${randomUUID().slice(0, 8)}`;
    this.tokens = Array.from({ length: EDITS }, (_, i) => `<${name}:${i}>`);
    this.text = connected.code;
    this.version = connected.version;
    this.failed.catch(() => {}); // observed through Promise.race; closing the socket at the end rejects it
    socket.on("insert_value", (b) => {
      try {
        this.receive(b);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on("disconnect", (r) => this.fail(new Error(`${name} disconnected: ${r}`)));
  }

  start(): void {
    this.send();
  }

  /** Resolves once broadcasts up to `version` are applied. */
  reached(version: number): Promise<void> {
    if (this.version >= version) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ version, resolve }));
  }

  private receive(b: InsertValueBroadcast): void {
    if (b.version <= this.version) return;
    this.buffer.set(b.version, b);
    this.drain();
  }

  private apply(version: number, clientID: string, changes: WireChange[]): void {
    assert.equal(version, this.version + 1);
    this.text = applyWire(this.text, changes);
    this.version = version;
    if (clientID === this.clientID) {
      assert.ok(this.inFlight, `${this.name}: an update of mine I did not send (version ${version})`);
      this.inFlight = false;
      this.confirmed++;
    }
  }

  private drain(): void {
    for (let b; (b = this.buffer.get(this.version + 1)); ) {
      this.buffer.delete(b.version);
      this.apply(b.version, b.clientID, b.changes);
    }
    for (const v of [...this.buffer.keys()]) if (v <= this.version) this.buffer.delete(v);
    for (const w of this.waiters.filter((w) => w.version <= this.version)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    if (!this.inFlight && this.confirmed < EDITS) this.send();
  }

  private send(): void {
    this.inFlight = true;
    const at = this.text.length;
    const payload = {
      epoch: this.connected.epoch,
      version: this.version,
      updates: [{ clientID: this.clientID, changes: [{ from: at, to: at, insert: this.tokens[this.confirmed]! }] }],
    };
    emitAck(this.socket, "insert_value", payload, 20_000).then(
      async (ack) => {
        if (ack.ok) {
          this.okAcks++;
          if (ack.version > payload.version + 1) this.rebased++;
          return;
        }
        if (ack.error.code !== "invalid_version") throw new Error(`${this.name}: refused ${JSON.stringify(ack.error)}`);
        // refused: nothing applied. Catch up from history and send the edit again at the new end.
        this.refusals++;
        const pulled = await emitAck(this.socket, "pull", { epoch: this.connected.epoch, version: this.version });
        if (!pulled.ok || !("updates" in pulled)) throw new Error(`${this.name}: pull gave ${JSON.stringify(pulled)}`);
        this.inFlight = false;
        for (const u of pulled.updates) if (u.version > this.version) this.apply(u.version, u.clientID, u.changes);
        this.drain();
      },
    ).catch((err: Error) => this.fail(err));
  }
}

async function within<T>(p: Promise<T>, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${DEADLINE_MS} ms: ${what()}`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

test(`${WRITERS} writers on two processes, ${EDITS} appends each: converge on the stored code, nothing lost or doubled`, async (t) => {
  const cs = `tmp-${randomUUID()}`;
  const urls = [p1.url, p2.url, p1.url];
  const joined = await Promise.all(urls.map((u) => connectSocket(u, cs)));
  const writers = joined.map(({ socket, connected }, i) => new Writer(`w${i}`, socket, connected));
  try {
    const epoch = writers[0]!.connected.epoch;
    for (const w of writers) assert.equal(w.connected.epoch, epoch);
    const status = () => writers.map((w) => `${w.name} v${w.version} confirmed ${w.confirmed} acks ${w.okAcks}`).join("; ");

    for (const w of writers) w.start();
    await within(Promise.race([Promise.all(writers.map((w) => w.reached(TOTAL))), ...writers.map((w) => w.failed)]), status);

    t.diagnostic(writers.map((w) => `${w.name}: rebased ${w.rebased}, refused ${w.refusals}`).join("; "));
    // The writers really overlapped: all three sent their first append at version 0, so at least
    // two of those were accepted over another's (rebased) or refused and resent.
    const contested = writers.reduce((n, w) => n + w.rebased + w.refusals, 0);
    assert.ok(contested >= WRITERS - 1, `only ${contested} appends overlapped another writer's`);
    const [code, version] = await raw.hmget(cs, "code", "version");
    assert.equal(version, String(TOTAL));
    assert.equal(writers.reduce((n, w) => n + w.okAcks, 0), TOTAL, "accepted updates = final version");
    for (const w of writers) {
      assert.equal(w.version, TOTAL, w.name);
      assert.equal(w.confirmed, EDITS, w.name);
      assert.equal(w.text, code, `${w.name}'s text differs from the stored code`);
    }
    let positions = 0;
    for (const w of writers) {
      let last = -1;
      for (const t of w.tokens) {
        assert.equal(code!.split(t).length - 1, 1, `${t} appears ${code!.split(t).length - 1} times`);
        const at = code!.indexOf(t);
        assert.ok(at > last, `${w.name}'s tokens are out of order at ${t}`);
        last = at;
        positions += t.length;
      }
    }
    assert.equal(code!.length, positions, "the text holds nothing but the tokens");
    // a late joiner sees the same state
    const late = await connectSocket(p2.url, cs);
    late.socket.close();
    assert.deepEqual([late.connected.version, late.connected.code], [TOTAL, code]);
    const pulled = await emitAck(writers[1]!.socket, "pull", { epoch, version: 0 });
    assert.ok(pulled.ok && "updates" in pulled);
    assert.equal(pulled.updates.length, TOTAL);
    assert.equal(pulled.updates.reduce((s, u) => applyWire(s, u.changes), ""), code);
  } finally {
    for (const w of writers) w.socket.close();
  }
});
