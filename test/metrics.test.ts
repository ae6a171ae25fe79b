/**
 * Metrics (docs/operations.md, "Metrics"): `GET /metrics` in Prometheus text format with every
 * documented metric moving as the server works; Redis errors counted; in cluster mode the primary
 * serves the sum over its workers at METRICS_PORT. In-process servers, real redis-server, the
 * cluster entry as a child process.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { freePort, startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { REPO_ROOT, startServerProcess } from "./helpers/server-process.js";
import { connectSocket, emitAck, nextEvent } from "./helpers/socket.js";

let redis: RedisServerHandle;
before(async () => (redis = await startRedis()));
after(async () => redis?.stop());

/** Parses the text format into `name{labels} -> value` (labels as printed). */
async function scrape(url: string): Promise<{ contentType: string; values: Map<string, number>; text: string }> {
  const res = await fetch(url);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return { contentType: res.headers.get("content-type") ?? "", values, text };
}

const DOCUMENTED = [
  "codespace_connected_sockets",
  "codespace_codespaces_open",
  "codespace_updates_accepted_total",
  "codespace_updates_rejected_total",
  "codespace_accept_latency_seconds",
  "codespace_commit_conflicts_total",
  "codespace_broadcast_deliveries_total",
  "codespace_auth_checks_total",
  "codespace_auth_api_calls_total",
  "codespace_redis_errors_total",
  "codespace_rate_limited_total",
  "codespace_forced_disconnects_total",
];

describe("GET /metrics (one process)", () => {
  test("every metric is exposed, with help and type, and counts what happened", async () => {
    const { server: srv, url: base } = await startInProcessServer({ REDIS_URL: redis.url });
    const cs = `tmp-metrics-${randomUUID()}`;
    const a = await connectSocket(base, cs);
    const b = await connectSocket(base, cs);
    try {
      const seen = nextEvent(b.socket, "insert_value");
      const ok = await emitAck(a.socket, "insert_value", {
        epoch: a.connected.epoch,
        version: 0,
        updates: [{ clientID: "m", changes: [{ from: 0, to: 0, insert: "hi" }] }, { clientID: "m", changes: [{ from: 2, to: 2, insert: "!" }] }],
      });
      assert.deepEqual(ok, { ok: true, version: 2 });
      await seen;
      const bad = await emitAck(a.socket, "insert_value", { epoch: a.connected.epoch, version: 2, updates: [] });
      assert.equal(!bad.ok && bad.error.code, "invalid_payload");
      const sel = nextEvent(b.socket, "create_selection");
      await emitAck(a.socket, "create_selection", { selections: [{ anchor: 0, head: 1 }] });
      await sel;

      const { contentType, values, text } = await scrape(`${base}/metrics`);
      assert.match(contentType, /^text\/plain; version=0\.0\.4/);
      for (const name of DOCUMENTED) {
        assert.match(text, new RegExp(`^# HELP ${name} `, "m"), `${name} has no HELP`);
        assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), `${name} has no TYPE`);
      }
      assert.equal(values.get("codespace_connected_sockets"), 2);
      assert.equal(values.get("codespace_codespaces_open"), 1);
      assert.equal(values.get("codespace_updates_accepted_total"), 2);
      assert.equal(values.get('codespace_updates_rejected_total{code="invalid_payload"}'), 1);
      assert.equal(values.get("codespace_accept_latency_seconds_count"), 1);
      // two updates to two sockets, one selection to one
      assert.equal(values.get('codespace_broadcast_deliveries_total{event="insert_value"}'), 4);
      assert.equal(values.get('codespace_broadcast_deliveries_total{event="create_selection"}'), 1);
      assert.equal(values.get('codespace_auth_checks_total{outcome="tmp"}'), 2);
      assert.ok(values.has("process_cpu_user_seconds_total"), "default process metrics");
    } finally {
      a.socket.close();
      b.socket.close();
      await srv.close();
    }
  });

  test("a commit that loses the compare-and-set to another process's is counted", async () => {
    const one = await startInProcessServer({ REDIS_URL: redis.url });
    const two = await startInProcessServer({ REDIS_URL: redis.url });
    const cs = `tmp-metrics-cas-${randomUUID()}`;
    const a = await connectSocket(one.url, cs);
    const b = await connectSocket(two.url, cs);
    const key = "codespace_commit_conflicts_total";
    const conflicts = async (): Promise<number> =>
      ((await scrape(`${one.url}/metrics`)).values.get(key) ?? 0) + ((await scrape(`${two.url}/metrics`)).values.get(key) ?? 0);
    try {
      assert.equal(await conflicts(), 0);
      // both send at the same version at once; the two servers' commits race in Redis. The loser is
      // retried: at most one conflict per round, usually one (a round whose second batch arrives
      // after the first commit's feed rebases locally instead), so try a bounded number of rounds.
      let version = 0;
      let counted = 0;
      for (let round = 0; round < 40 && counted === 0; round++) {
        const payload = (clientID: string) => ({ epoch: a.connected.epoch, version, updates: [{ clientID, changes: [{ from: 0, to: 0, insert: clientID }] }] });
        const [ra, rb] = await Promise.all([emitAck(a.socket, "insert_value", payload("a")), emitAck(b.socket, "insert_value", payload("b"))]);
        assert.ok(ra.ok && rb.ok, JSON.stringify([ra, rb]));
        assert.notEqual(ra.version, rb.version, "each batch committed once, at its own version");
        version = Math.max(ra.version, rb.version);
        counted = await conflicts();
        assert.ok(counted <= round + 1, `at most one conflict per round, ${counted} after ${round + 1}`);
      }
      assert.ok(counted > 0, "a race lost in Redis is counted on the process that retried");
    } finally {
      a.socket.close();
      b.socket.close();
      await one.server.close();
      await two.server.close();
    }
  });

  test("a broadcast made on another process is counted where it is delivered", async () => {
    const one = await startInProcessServer({ REDIS_URL: redis.url });
    const two = await startInProcessServer({ REDIS_URL: redis.url });
    const cs = `tmp-metrics-x-${randomUUID()}`;
    const a = await connectSocket(one.url, cs);
    const b = await connectSocket(two.url, cs);
    try {
      const sel = nextEvent(b.socket, "create_selection");
      await emitAck(a.socket, "create_selection", { selections: [{ anchor: 0, head: 0 }] });
      await sel;
      const key = 'codespace_broadcast_deliveries_total{event="create_selection"}';
      assert.equal((await scrape(`${two.url}/metrics`)).values.get(key), 1, "the delivering process counts it");
      assert.equal((await scrape(`${one.url}/metrics`)).values.get(key), undefined, "the emitting process has no recipient");
    } finally {
      a.socket.close();
      b.socket.close();
      await one.server.close();
      await two.server.close();
    }
  });

  test("Redis failures: answered store_unavailable (kind=command) and connection errors (kind=connection)", async () => {
    const own = await startRedis();
    const { server: srv, url } = await startInProcessServer({ REDIS_URL: own.url });
    try {
      const { socket, connected } = await connectSocket(url, `tmp-redis-${randomUUID()}`);
      await own.client().call("SHUTDOWN", "NOSAVE").catch(() => {}); // restart() below brings it back for a clean close
      while (srv.isReady()) await new Promise((r) => setTimeout(r, 10));
      const res = await emitAck(socket, "insert_value", { epoch: connected.epoch, version: 0, updates: [{ clientID: "r", changes: [{ from: 0, to: 0, insert: "x" }] }] });
      assert.equal(!res.ok && res.error.code, "store_unavailable");
      const { values } = await scrape(`${url}/metrics`);
      assert.ok((values.get('codespace_redis_errors_total{kind="command"}') ?? 0) >= 1);
      assert.ok((values.get('codespace_redis_errors_total{kind="connection"}') ?? 0) >= 1);
      assert.equal(values.get('codespace_updates_rejected_total{code="store_unavailable"}'), 1);
      socket.close();
    } finally {
      await own.restart();
      await srv.close();
      await own.stop();
    }
  });
});

describe("cluster mode", () => {
  test("the primary serves the sum of its workers' metrics at METRICS_PORT", async () => {
    const metricsPort = await freePort();
    const proc = await startServerProcess(
      { REDIS_URL: redis.url, WORKERS: "2", METRICS_PORT: String(metricsPort), LOG_LEVEL: "info" },
      { script: join(REPO_ROOT, "dist/cluster/main.js"), timeoutMs: 30_000 },
    );
    const sockets = [];
    try {
      // enough sessions for the least-connection balancer to use both workers
      for (let i = 0; i < 4; i++) sockets.push((await connectSocket(proc.url, `tmp-cm-${randomUUID()}`, ["polling", "websocket"])).socket);
      const { values, text } = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(values.get("codespace_connected_sockets"), 4);
      assert.equal(values.get('codespace_auth_checks_total{outcome="tmp"}'), 4);
      assert.equal(values.get("codespace_codespaces_open"), 4);
      assert.match(text, /^# TYPE codespace_accept_latency_seconds histogram/m);
      // a worker's own /metrics on the public port answers that worker only
      const one = await scrape(`${proc.url}/metrics`);
      assert.ok((one.values.get("codespace_connected_sockets") ?? 0) < 4, "a worker reported the whole cluster");
    } finally {
      for (const s of sockets) s.close();
      await proc.stop();
    }
  });
});
