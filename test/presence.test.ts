/**
 * Presence (docs/protocol.md, "Presence"): `connected.users`, `user_joined`, `user_left`, across two
 * Redis-backed processes, with the display name the site API returns; and on the embedded
 * single-process default; and the list when another process does not answer.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import type { Redis } from "ioredis";
import type { CodespaceServer } from "../server/index.js";
import type { UserInfo, UserLeftPayload } from "../protocol/events.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { connectSocket, nextEvent } from "./helpers/socket.js";

const byId = (a: UserInfo, b: UserInfo) => a.id.localeCompare(b.id);

describe("presence across two processes sharing Redis", { timeout: 60_000 }, () => {
  let redis: RedisServerHandle;
  let stub: StubApi;
  let p1: ServerProcess;
  let p2: ServerProcess;

  before(async () => {
    redis = await startRedis();
    stub = await startStubApi();
    const env = { REDIS_URL: redis.url, API_BASE_URL: stub.baseUrl };
    [p1, p2] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  });
  after(async () => {
    await Promise.allSettled([p1?.stop(), p2?.stop()]);
    await stub?.close();
    await redis?.stop();
  });

  test("users lists everyone on every process with names; joins and leaves reach the others", async () => {
    const uuid = randomUUID();
    const named = `named-${randomUUID()}`;
    const viewer = `viewer-${randomUUID()}`;
    stub.setToken(named, { body: { uuid, mode: "edit", name: "  Ada Lovelace  " } });
    stub.setToken(viewer, { body: { uuid, mode: "view_only", name: 42 } });

    const a = await connectSocket(p1.url, named);
    try {
      assert.deepEqual(a.connected.users, [{ id: a.socket.id, mode: "edit", name: "Ada Lovelace" }]);
      const joined = nextEvent(a.socket, "user_joined");
      const b = await connectSocket(p2.url, viewer, ["polling"]);
      try {
        const expected = [
          { id: a.socket.id!, mode: "edit" as const, name: "Ada Lovelace" },
          { id: b.socket.id!, mode: "view_only" as const },
        ].sort(byId);
        assert.deepEqual([...b.connected.users].sort(byId), expected);
        assert.deepEqual(await joined, { id: b.socket.id, mode: "view_only" });

        // a third socket on p1 sees both; a socket of another codespace sees nobody else
        const c = await connectSocket(p1.url, named);
        const other = await connectSocket(p2.url, `tmp-${randomUUID()}`);
        try {
          assert.equal(c.connected.users.length, 3);
          assert.deepEqual(other.connected.users, [{ id: other.socket.id, mode: "edit" }]);
        } finally {
          const leftC = nextEvent<UserLeftPayload>(b.socket, "user_left");
          const cid = c.socket.id; // socket.io-client clears it on close
          c.socket.close();
          assert.deepEqual(await leftC, { id: cid });
          other.socket.close();
        }
      } finally {
        const id = b.socket.id;
        // c's user_left may reach a after b's copy of it arrived: wait for b's own
        const left = new Promise<UserLeftPayload>((resolve) => {
          const on = (p: UserLeftPayload): void => {
            if (p.id !== id) return;
            a.socket.off("user_left", on);
            resolve(p);
          };
          a.socket.on("user_left", on);
        });
        b.socket.close();
        assert.deepEqual(await left, { id });
      }
    } finally {
      a.socket.close();
    }
  });
});

describe("presence on the embedded single-process default", () => {
  let srv: CodespaceServer;
  let url: string;
  before(async () => {
    ({ server: srv, url } = await startInProcessServer({ LOG_LEVEL: "error" }));
  });
  after(() => srv?.close());

  test("tmp- codespace: users, user_joined, user_left (no names)", async () => {
    const token = `tmp-${randomUUID()}`;
    const a = await connectSocket(url, token);
    const joined = nextEvent<UserInfo>(a.socket, "user_joined");
    const b = await connectSocket(url, token);
    assert.deepEqual([...b.connected.users].sort(byId), [{ id: a.socket.id!, mode: "edit" as const }, { id: b.socket.id!, mode: "edit" as const }].sort(byId));
    assert.deepEqual(await joined, { id: b.socket.id, mode: "edit" });
    const left = nextEvent<UserLeftPayload>(a.socket, "user_left");
    const id = b.socket.id;
    b.socket.close();
    assert.deepEqual(await left, { id });
    a.socket.close();
  });
});

describe("a process that does not answer the presence list (a stuck one, or an older version during a rolling upgrade)", () => {
  let redis: RedisServerHandle;
  let srv: CodespaceServer;
  let url: string;
  let mute: Server;
  let pub: Redis;
  let sub: Redis;
  const lines: { level: number; msg: string; room?: string }[] = [];
  before(async () => {
    redis = await startRedis();
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    ({ server: srv, url } = await startInProcessServer({ REDIS_URL: redis.url }, { logger: pino({ level: "warn" }, sink) }));
    // a Socket.IO server on the same Redis adapter channels, with no presence_list listener
    pub = redis.client();
    sub = pub.duplicate();
    mute = new Server({ adapter: createAdapter(pub, sub) });
    mute.of("/codespace");
    // the mute server counts only once its subscriptions are in place (no event tells: ask Redis)
    const adapter = srv.io.of("/codespace").adapter as unknown as { serverCount(): Promise<number> };
    for (let i = 0; (await adapter.serverCount()) < 2; i++) {
      if (i > 200) throw new Error("the mute server never subscribed");
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  after(async () => {
    await srv?.close();
    // (never attached to an HTTP server: no io.close()) every namespace's adapter, then the connections
    for (const name of ["/", "/codespace"]) await mute?.of(name).adapter.close();
    await Promise.allSettled([sub?.quit(), pub?.quit()]);
    await redis?.stop();
  });

  test("the joining socket still gets connected, with this process's sockets, and one warn line names the room", async () => {
    const token = `tmp-${randomUUID()}`;
    const a = await connectSocket(url, token, ["websocket"], { timeoutMs: 10_000 });
    try {
      assert.deepEqual(a.connected.users, [{ id: a.socket.id!, mode: "edit" }]);
      const warned = lines.filter((l) => l.level === 40 && /presence: cross-instance list failed/.test(l.msg));
      assert.equal(warned.length, 1, JSON.stringify(lines));
      assert.equal(warned[0]!.room, `codespace:${token}`);
    } finally {
      a.socket.close();
    }
  });
});

describe("two deployments on one Redis with different KEY_PREFIX", () => {
  let redis: RedisServerHandle;
  let a: CodespaceServer;
  let b: CodespaceServer;
  let urlA: string;
  let urlB: string;
  before(async () => {
    redis = await startRedis();
    ({ server: a, url: urlA } = await startInProcessServer({ REDIS_URL: redis.url, KEY_PREFIX: "one:" }));
    ({ server: b, url: urlB } = await startInProcessServer({ REDIS_URL: redis.url, KEY_PREFIX: "two:" }));
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await redis?.stop();
  });

  test("do not see each other's sockets: no user_joined, no entry in connected.users, no selections", async () => {
    const token = `tmp-${randomUUID()}`;
    const onA = await connectSocket(urlA, token);
    const seen: string[] = [];
    onA.socket.on("user_joined", ({ id }) => seen.push(`joined ${id}`));
    onA.socket.on("create_selection", ({ sender }) => seen.push(`selection ${sender}`));
    try {
      const onB = await connectSocket(urlB, token);
      try {
        assert.deepEqual(onB.connected.users.map((u) => u.id), [onB.connected.id]);
        onB.socket.emit("create_selection", { selections: [{ anchor: 0, head: 0 }] });
        // a socket of A's own deployment joins after B's events: once it is seen, B's would have been
        const mate = nextEvent(onA.socket, "user_joined", 10_000);
        const onA2 = await connectSocket(urlA, token);
        try {
          assert.equal((await mate).id, onA2.connected.id);
          assert.deepEqual(seen, [`joined ${onA2.connected.id}`]);
        } finally {
          onA2.socket.close();
        }
      } finally {
        onB.socket.close();
      }
    } finally {
      onA.socket.close();
    }
  });
});
