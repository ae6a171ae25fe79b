/**
 * What an idle connection holds (bench/notes.md, "Idle connections"): the listeners Socket.IO keeps
 * for each socket of `/codespace` are functions shared by every socket (no closure, no context
 * object per connection), the presence heartbeat adds none, and a handshake whose token check
 * settles at once adds no listener to the engine connection (adding and removing one leaves Node's
 * listener array grown for good). In-process server on a real redis-server, so the Redis-only
 * parts (presence heartbeat, Redis adapter) are there.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { connectSocket, emitAck, type ClientSocket } from "./helpers/socket.js";

let redis: RedisServerHandle;
let srv: InProcessServer;
before(async () => {
  redis = await startRedis();
  srv = await startInProcessServer({ REDIS_URL: redis.url });
});
after(async () => {
  await srv?.close();
  await redis?.stop();
});

test("two sockets of a codespace share every listener; the disconnect listener is one function; the handshake adds no close listener", async () => {
  // listeners added to each engine connection after Socket.IO's own (its `connection` handler runs first)
  const closeListenersAdded: number[] = [];
  srv.server.io.engine.on("connection", (conn: NodeJS.EventEmitter) => {
    const i = closeListenersAdded.push(0) - 1;
    conn.on("newListener", (event: string) => {
      if (event === "close") closeListenersAdded[i]!++;
    });
  });
  const codespace = `tmp-idle-${randomUUID()}`;
  const clients: ClientSocket[] = [];
  try {
    let epoch = "";
    for (let i = 0; i < 2; i++) {
      const { socket, connected } = await connectSocket(srv.url, codespace);
      clients.push(socket);
      epoch = connected.epoch;
    }
    // the shared listeners find each socket's codespace
    assert.deepEqual(await emitAck(clients[1]!, "pull", { epoch, version: 0 }), { ok: true, version: 0, updates: [] });

    const [a, b] = [...srv.server.io.of("/codespace").sockets.values()];
    assert.ok(a && b, "two server-side sockets");
    // EventEmitter's view of them (Socket.IO's typings narrow the event names to the protocol's)
    const [ea, eb] = [a, b] as unknown as NodeJS.EventEmitter[];
    assert.deepEqual(ea!.eventNames(), eb!.eventNames());
    for (const name of ea!.eventNames()) {
      const la = ea!.listeners(name);
      const lb = eb!.listeners(name);
      assert.equal(la.length, lb.length, `${String(name)}: as many listeners`);
      la.forEach((f, i) => assert.equal(f, lb[i], `${String(name)} listener ${i} is one function for every socket`));
    }
    assert.equal(ea!.listenerCount("disconnect"), 1, "one disconnect listener (presence and the heartbeat are told by it)");
    assert.deepEqual(a.listenersAny(), b.listenersAny());
    assert.deepEqual(a.listenersAnyOutgoing(), b.listenersAnyOutgoing());
    assert.deepEqual(closeListenersAdded, [0, 0], "no close listener added to the connections (tmp- tokens settle at once)");
  } finally {
    for (const c of clients) c.close();
  }
});
