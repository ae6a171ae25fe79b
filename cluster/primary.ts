/**
 * The cluster primary: forks WORKERS workers (default: the number of CPUs), accepts every
 * connection on PORT itself and hands it to a worker with @socket.io/sticky (by the engine.io
 * session id `sid`, so all the HTTP long-polling requests of a session and its WebSocket upgrade
 * reach the process that owns the session; new sessions go to the ready worker with the fewest).
 * What sticky's public API does not cover is in sticky-adapter.ts.
 *
 * - It binds PORT (and METRICS_PORT) before forking: a port in use is one line on stderr and exit 1.
 *   Connections are handed over once every initial worker is ready (then it logs `listening`);
 *   until then the primary answers them itself: /healthz 200, anything else 503 (sticky-adapter.ts).
 * - A worker that exits while the primary is not shutting down is replaced (after a backoff when
 *   workers keep dying young, so a crash loop does not spin).
 * - SIGTERM/SIGINT: forwarded to every worker (each shuts down gracefully, see worker.ts); the
 *   primary keeps routing the sessions of draining workers (so their last acks and close packets get
 *   through) and exits once all workers have exited: 0 if all exited 0, else 1; after
 *   SHUTDOWN_TIMEOUT_MS plus a grace period it SIGKILLs the stragglers and exits 1.
 * - Requires REDIS_URL or REDIS_CLUSTER_NODES (workers share the store and the broadcasts through Redis).
 */
import cluster, { type Worker } from "node:cluster";
import type { Config } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { listenUrl } from "../server/listen-url.js";
import { serveClusterMetrics } from "./metrics-aggregator.js";
import { isWorkerMessage, type PrimaryMessage } from "./protocol.js";
import { setupStickyPrimary } from "./sticky-adapter.js";

/** A worker that dies sooner than this after its start counts as crashing (backoff before the next). */
const YOUNG_DEATH_MS = 5000;
/** Extra time beyond SHUTDOWN_TIMEOUT_MS the primary gives its workers before SIGKILL. */
const KILL_GRACE_MS = 2000;

/** The line printed (and the exit) when REDIS_URL is missing. */
export const REDIS_REQUIRED_MESSAGE =
  "codespace-cluster: REDIS_URL is required in cluster mode (workers cannot share the in-memory store); " +
  "set REDIS_URL=redis://host:port (or REDIS_CLUSTER_NODES=host:port,... for a Redis Cluster), or run a single process with `npm start`";

/** The line printed (and the exit) when a port cannot be bound. */
export function listenFailureMessage(what: string, host: string, port: number, err: NodeJS.ErrnoException): string {
  const reason = err.code === "EADDRINUSE" ? "address already in use" : err.code === "EACCES" ? "permission denied" : err.message;
  return `codespace-cluster: cannot listen on ${host}:${port} (${what}): ${reason}${err.code ? ` (${err.code})` : ""}`;
}

export async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  if (!config.redisUrl && !config.redisClusterNodes) {
    process.stderr.write(REDIS_REQUIRED_MESSAGE + "\n");
    process.exit(1);
  }

  // Bind first: a port in use stops everything before any worker starts.
  const router = setupStickyPrimary({ logger });
  const listening = await router.listen(config.port, config.host).catch((err: NodeJS.ErrnoException) => {
    process.stderr.write(listenFailureMessage("PORT", config.host, config.port, err) + "\n");
    process.exit(1);
  });
  if (config.metricsPort !== undefined) {
    // every worker's registry, summed; the public port answers one worker only
    const metrics = await serveClusterMetrics(config.metricsPort, config.host).catch((err: NodeJS.ErrnoException) => {
      process.stderr.write(listenFailureMessage("METRICS_PORT", config.host, config.metricsPort!, err) + "\n");
      process.exit(1);
    });
    logger.info({ metricsPort: metrics.port }, "serving aggregated metrics at GET /metrics");
  }

  let shuttingDown = false;
  let failures = 0; // consecutive young deaths
  const started = new Map<number, number>(); // worker id -> start time
  const exitCodes: (number | null)[] = [];

  // The sticky balancer sends each connection's first bytes (a Buffer) over IPC: "advanced"
  // serialization keeps them a Buffer (JSON would not).
  cluster.setupPrimary({ serialization: "advanced" });

  /** Workers not yet exited (cluster.workers loses a worker earlier: see "codespace:stopped"). */
  const live = new Map<number, Worker>();
  const fork = (): Worker => {
    const w = cluster.fork();
    started.set(w.id, Date.now());
    live.set(w.id, w);
    // Not routable until ready: its sticky message handler is not installed, a connection handed
    // over now would be dropped and hang.
    router.add(w);
    return w;
  };

  // A worker being started (until it reports ready) or draining (after SIGTERM) gets no new
  // session; sessions of a draining worker still route to it by sid, so its last acks get through.
  cluster.on("message", (worker, message: unknown) => {
    if (!isWorkerMessage(message)) return;
    if (message.type === "codespace:ready") {
      failures = 0;
      router.setRoutable(worker, true);
      logger.info({ workerPid: worker.process.pid, workerId: worker.id }, "worker ready");
    } else if (message.type === "codespace:draining") {
      router.setRoutable(worker, false);
      logger.info({ workerPid: worker.process.pid }, "worker draining");
    } else if (message.type === "codespace:stopped") {
      // Its server is closed: later requests of its old sessions get a 400 here and their clients
      // reconnect, instead of being handed to a process about to exit. IPC is ordered: when the
      // worker reads the reply, every connection handed to it has arrived.
      router.stop(worker);
      setImmediate(() => {
        if (worker.isConnected()) worker.send({ type: "codespace:unrouted" } satisfies PrimaryMessage, undefined, () => {});
      });
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    live.delete(worker.id);
    const age = Date.now() - (started.get(worker.id) ?? 0);
    started.delete(worker.id);
    if (shuttingDown) {
      exitCodes.push(code);
      logger.info({ workerPid: worker.process.pid, code, signal }, "worker exited");
      if (live.size === 0) finish();
      return;
    }
    failures = age < YOUNG_DEATH_MS ? failures + 1 : 0;
    const delay = failures <= 1 ? 0 : Math.min(100 * 2 ** (failures - 2), 10_000);
    logger.warn({ workerPid: worker.process.pid, code, signal, restartInMs: delay }, "worker exited; replacing it");
    setTimeout(() => {
      if (!shuttingDown) fork();
    }, delay);
  });

  // Fork and wait until every initial worker is ready (a replacement for one that died counts).
  const initial: Promise<void>[] = [];
  for (let i = 0; i < config.workers; i++) fork();
  let readyCount = 0;
  initial.push(
    new Promise<void>((resolve) => {
      const onMessage = (_w: Worker, m: unknown): void => {
        if (isWorkerMessage(m) && m.type === "codespace:ready" && ++readyCount >= config.workers) {
          cluster.off("message", onMessage);
          resolve();
        }
      };
      cluster.on("message", onMessage);
    }),
  );

  let killTimer: NodeJS.Timeout | undefined;
  const finish = (): void => {
    if (killTimer) clearTimeout(killTimer);
    router.close();
    const ok = exitCodes.every((c) => c === 0);
    logger.info({ workers: exitCodes.length, ok }, "stopped");
    process.exit(ok ? 0 : 1);
  };

  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, "shutting down");
    const workers = [...live.values()];
    if (workers.length === 0) return finish();
    // Signal the processes directly: worker.kill() would first disconnect the IPC channel, which the
    // sticky balancer needs to hand over the draining workers' remaining requests.
    for (const w of workers) w.process.kill(signal);
    killTimer = setTimeout(() => {
      const left = [...live.values()];
      logger.error({ timeoutMs: config.shutdownTimeoutMs, left: left.map((w) => w.process.pid) }, "shutdown timed out; killing workers");
      for (const w of left) w.process.kill("SIGKILL");
      exitCodes.push(1);
    }, config.shutdownTimeoutMs + KILL_GRACE_MS);
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  await Promise.all(initial);
  if (shuttingDown) return;
  router.open();
  const port = listening.port;
  logger.info({ port, url: listenUrl(config.host, port), workers: config.workers, store: config.redisClusterNodes ? "redis-cluster" : "redis" }, "listening");
}
