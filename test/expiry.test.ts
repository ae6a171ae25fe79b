/**
 * Expiry (docs/protocol.md, `expired`): when a codespace's stored state expires or is deleted,
 * every socket of it, on every process, gets `expired { codespace }` and is then disconnected;
 * sockets of other codespaces stay; a client still holding the old epoch is refused with
 * `invalid_version` and its text never reaches the recreated codespace.
 * Real redis-server with two server processes, and the in-memory default in-process.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { CodespaceServer } from "../server/index.js";
import { waitForOutput } from "./helpers/editors.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { connectSocket, emitAck, nextEvent, type ClientSocket } from "./helpers/socket.js";
import type { ConnectedPayload } from "../protocol/events.js";

/** Expiry fires on the store's schedule; this only bounds a hang. */
const EVENT_TIMEOUT_MS = 20_000;

interface Watched {
  socket: ClientSocket;
  connected: ConnectedPayload;
  /** `expired` and `disconnect`, in arrival order. */
  events: string[];
}

async function join(url: string, token: string): Promise<Watched> {
  const { socket, connected } = await connectSocket(url, token);
  const events: string[] = [];
  socket.on("expired", () => events.push("expired"));
  socket.on("disconnect", () => events.push("disconnect"));
  return { socket, connected, events };
}

/** Awaits `expired { codespace }` then the server's disconnect on each socket. */
async function expectExpired(sockets: Watched[], codespace: string): Promise<void> {
  await Promise.all(
    sockets.map(async (w) => {
      const expired = w.events.includes("expired") ? undefined : nextEvent(w.socket, "expired", EVENT_TIMEOUT_MS);
      const reason = w.events.includes("disconnect") ? "io server disconnect" : await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no disconnect after expiry")), EVENT_TIMEOUT_MS);
        w.socket.once("disconnect", (r) => (clearTimeout(t), resolve(r)));
      });
      if (expired) assert.deepEqual(await expired, { codespace });
      assert.equal(reason, "io server disconnect");
      assert.deepEqual(w.events, ["expired", "disconnect"]);
      assert.equal(w.socket.connected, false);
    }),
  );
}

/** The other codespace's sockets are untouched and still answered. */
async function expectAlive(sockets: Watched[]): Promise<void> {
  for (const w of sockets) {
    assert.deepEqual(w.events, [], "a socket of another codespace got expired/disconnected");
    assert.equal(w.socket.connected, true);
    const { epoch, version } = w.connected;
    const pulled = await emitAck(w.socket, "pull", { epoch, version });
    assert.equal(pulled.ok, true, JSON.stringify(pulled));
  }
}

/**
 * A client of the expired codespace reconnects (the codespace is recreated, empty, new epoch) and
 * sends its edit with the old epoch: refused with invalid_version, for insert_value and pull.
 */
async function expectOldEpochRefused(url: string, token: string, oldEpoch: string, oldVersion: number): Promise<ConnectedPayload> {
  const { socket, connected } = await connectSocket(url, token);
  try {
    assert.notEqual(connected.epoch, oldEpoch);
    assert.equal(connected.code, "");
    assert.equal(connected.version, 0);
    const upd = (version: number, from: number) => ({ epoch: oldEpoch, version, updates: [{ clientID: "stale", changes: [{ from, to: from, insert: "STALE" }] }] });
    for (const [v, from] of [[oldVersion, 0], [0, 0]] as const) {
      const ack = await emitAck(socket, "insert_value", upd(v, from));
      assert.equal(ack.ok, false, JSON.stringify(ack));
      assert.equal(!ack.ok && ack.error.code, "invalid_version", JSON.stringify(ack));
    }
    const pulled = await emitAck(socket, "pull", { epoch: oldEpoch, version: 0 });
    assert.equal(!pulled.ok && pulled.error.code, "invalid_version", JSON.stringify(pulled));
    const again = await connectSocket(url, token);
    again.socket.close();
    assert.equal(again.connected.code, "");
    assert.equal(again.connected.epoch, connected.epoch);
    return connected;
  } finally {
    socket.close();
  }
}

const editToken = (stub: StubApi, uuid: string): string => {
  const token = `tok-${randomUUID()}`;
  stub.setToken(token, { status: 200, body: { uuid, mode: "edit" } });
  return token;
};

describe("Redis, two server processes", () => {
  let redis: RedisServerHandle;
  let raw: Redis;
  let stub: StubApi;
  let p1: ServerProcess;
  let p2: ServerProcess;

  before(async () => {
    redis = await startRedis();
    raw = redis.client();
    stub = await startStubApi();
    const env = { REDIS_URL: redis.url, TMP_CODESPACE_EXPIRE_UPDATE: "2", API_BASE_URL: stub.baseUrl };
    [p1, p2] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  });

  after(async () => {
    await Promise.allSettled([p1?.stop(), p2?.stop()]);
    await stub?.close();
    await redis?.stop();
  });

  test("a tmp- codespace expiring (TTL 2 s) expires its sockets on both processes, not another codespace's", async () => {
    const cs = `tmp-${randomUUID()}`;
    const otherToken = editToken(stub, randomUUID());
    const sockets = [await join(p1.url, cs), await join(p2.url, cs), await join(p1.url, cs)];
    const others = [await join(p1.url, otherToken), await join(p2.url, otherToken)];
    try {
      const { epoch } = sockets[0]!.connected;
      for (const s of sockets) assert.equal(s.connected.epoch, epoch);
      const ack = await emitAck(sockets[1]!.socket, "insert_value", { epoch, version: 0, updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "secret" }] }] });
      assert.deepEqual(ack, { ok: true, version: 1 });
      assert.equal(await raw.hget(cs, "code"), "secret");

      await expectExpired(sockets, cs);
      assert.equal(await raw.exists(cs), 0);
      await expectAlive(others);

      for (const url of [p1.url, p2.url]) {
        const recreated = await expectOldEpochRefused(url, cs, epoch, 1);
        assert.equal(await raw.hget(cs, "code"), "");
        assert.equal(await raw.hget(cs, "version"), "0");
        assert.equal(await raw.hget(cs, "epoch"), recreated.epoch);
      }
    } finally {
      for (const w of [...sockets, ...others]) w.socket.close();
    }
  });

  test("a key that is no codespace of theirs (another application's, same database) expiring is not reported", async () => {
    const foreign = `session:${randomUUID()}`;
    const cs = `tmp-${randomUUID()}`;
    const sockets = [await join(p1.url, cs)];
    try {
      await raw.set(foreign, "1", "PX", 50);
      // the codespace expires 2 s after its last write: its event comes after the foreign key's
      await expectExpired(sockets, cs);
      // the process holding the codespace reports it (its log is read from a pipe: wait for the line)
      await waitForOutput(p1.output, new RegExp(`"codespace":"${cs}".*"msg":"codespace expired"`), EVENT_TIMEOUT_MS);
      for (const p of [p1, p2]) assert.doesNotMatch(p.output(), new RegExp(foreign), "the foreign key is not taken for a codespace");
    } finally {
      for (const w of sockets) w.socket.close();
    }
  });

  test("DEL of the key through a raw client expires the sockets on both processes", async () => {
    const uuid = randomUUID();
    const token = editToken(stub, uuid);
    const otherToken = editToken(stub, randomUUID());
    const sockets = [await join(p1.url, token), await join(p2.url, token)];
    const others = [await join(p2.url, otherToken), await join(p1.url, otherToken)];
    try {
      const { epoch } = sockets[0]!.connected;
      const ack = await emitAck(sockets[0]!.socket, "insert_value", { epoch, version: 0, updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "deleted soon" }] }] });
      assert.deepEqual(ack, { ok: true, version: 1 });
      assert.ok((await raw.ttl(uuid)) > 2, "a non-tmp codespace has the long TTL");
      assert.equal(await raw.del(uuid), 1);

      await expectExpired(sockets, uuid);
      await expectAlive(others);
      const recreated = await expectOldEpochRefused(p2.url, token, epoch, 1);
      assert.equal(await raw.hget(uuid, "code"), "");
      assert.equal(await raw.hget(uuid, "epoch"), recreated.epoch);
    } finally {
      for (const w of [...sockets, ...others]) w.socket.close();
    }
  });
});

describe("in-memory default, in-process server", () => {
  let stub: StubApi;
  let srv: CodespaceServer;
  let url: string;

  before(async () => {
    stub = await startStubApi();
    ({ server: srv, url } = await startInProcessServer({ TMP_CODESPACE_EXPIRE_UPDATE: "1", API_BASE_URL: stub.baseUrl }));
  });

  after(async () => {
    await srv?.close();
    await stub?.close();
  });

  test("a tmp- codespace expiring (TTL 1 s) expires its sockets, not another codespace's", async () => {
    const cs = `tmp-${randomUUID()}`;
    const sockets = [await join(url, cs), await join(url, cs)];
    const others = [await join(url, editToken(stub, randomUUID()))];
    try {
      const { epoch } = sockets[0]!.connected;
      const ack = await emitAck(sockets[0]!.socket, "insert_value", { epoch, version: 0, updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "secret" }] }] });
      assert.deepEqual(ack, { ok: true, version: 1 });
      await expectExpired(sockets, cs);
      await expectAlive(others);
      await expectOldEpochRefused(url, cs, epoch, 1);
    } finally {
      for (const w of [...sockets, ...others]) w.socket.close();
    }
  });
});
