/**
 * Memory: 1,000 codespaces opened (a socket each, one accepted edit, a selection) and left bring
 * this process back to its baseline: no socket, room, registry entry, engine client, timer or
 * listener left behind. In-process server on a real redis-server (the in-memory store keeps
 * codespaces alive by design until their TTL, so it would not tell leaks apart).
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { connectSocket, emitAck } from "./helpers/socket.js";

const CODESPACES = 1000;
const PARALLEL = 50;

let redis: RedisServerHandle;
let srv: CodespaceServer;
before(async () => {
  redis = await startRedis();
  ({ server: srv } = await startInProcessServer({ REDIS_URL: redis.url, AUTH_CACHE_MS: "1000", RATE_LIMIT_WINDOW_MS: "600000" }));
});
after(async () => {
  await srv?.close();
  await redis?.stop();
});

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

function counts() {
  const nsp = srv.io.of("/codespace");
  const listeners = (e: NodeJS.EventEmitter) => e.eventNames().reduce((n, name) => n + e.listenerCount(name), 0);
  return {
    sockets: nsp.sockets.size,
    rooms: nsp.adapter.rooms.size,
    registry: srv.registry.size,
    rateLimiterEntries: srv.rateLimiter.size,
    engineClients: srv.io.engine.clientsCount,
    nspListeners: listeners(nsp),
    engineListeners: listeners(srv.io.engine as unknown as NodeJS.EventEmitter),
    httpListeners: listeners(srv.httpServer),
    processListeners: listeners(process),
  };
}

async function openAndLeave(i: number): Promise<void> {
  const { socket, connected } = await connectSocket(`http://127.0.0.1:${srv.port}`, `tmp-mem-${i}-${randomUUID()}`);
  const ok = await emitAck(socket, "insert_value", {
    epoch: connected.epoch,
    version: 0,
    updates: [{ clientID: "m", changes: [{ from: 0, to: 0, insert: `doc ${i}` }] }],
  });
  assert.deepEqual(ok, { ok: true, version: 1 });
  await emitAck(socket, "create_selection", { selections: [{ anchor: 0, head: 3 }] });
  socket.close();
}

async function settled(baseline: ReturnType<typeof counts>, baseTimers: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const now = counts();
    if (JSON.stringify(now) === JSON.stringify(baseline) && timers() <= baseTimers) return;
    if (Date.now() > deadline) {
      assert.deepEqual({ ...now, timers: timers() }, { ...baseline, timers: baseTimers });
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(`${CODESPACES} codespaces opened and left: sockets, rooms, registry, engine clients, timers and listeners back at baseline`, { timeout: 120_000 }, async () => {
  // warm-up: lazily created structures (adapter maps, metric children, ...) exist from here on
  await openAndLeave(-1);
  while (srv.io.of("/codespace").sockets.size > 0 || srv.registry.size > 0 || srv.io.engine.clientsCount > 0) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const baseline = counts();
  const baseTimers = timers();
  assert.equal(baseline.sockets, 0);
  assert.equal(baseline.registry, 0);

  for (let i = 0; i < CODESPACES; i += PARALLEL) {
    await Promise.all(Array.from({ length: Math.min(PARALLEL, CODESPACES - i) }, (_, k) => openAndLeave(i + k)));
  }
  const peak = (await srv.metrics.registry.getSingleMetric("codespace_updates_accepted_total")?.get())?.values[0]?.value;
  assert.equal(peak, CODESPACES + 1);
  await settled(baseline, baseTimers);
});
