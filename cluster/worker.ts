/**
 * A cluster worker: the same server as a single instance (store + Redis adapter), except that it
 * does not bind the port; the primary accepts each connection and @socket.io/sticky hands it over
 * (sticky-adapter.ts), polling requests of one session always to the same worker.
 *
 * SIGTERM/SIGINT (forwarded by the primary, or sent to this process alone): tell the primary to
 * route no new sessions here, then the server's graceful close(): refuse new work, finish queued
 * `insert_value` commits, disconnect the sockets (their clients reconnect to another worker); exit 0,
 * or 1 if that took longer than SHUTDOWN_TIMEOUT_MS.
 */
import cluster from "node:cluster";
import type { Config } from "../server/config.js";
import { createServer } from "../server/index.js";
import { logUnhandledRejections } from "../server/process-guards.js";
import { exitOnStartupError } from "../server/startup-error.js";
import { shareWithPrimary } from "./metrics-aggregator.js";
import type { PrimaryMessage, WorkerMessage } from "./protocol.js";
import { setupStickyWorker } from "./sticky-adapter.js";

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message, undefined, {}, () => {});
}

/**
 * The last step before exiting (bounded: 2 s): tells the primary to route nothing more here and
 * waits for its answer, which arrives after every connection it handed over (those get answered
 * here, e.g. 400 for a closed session); then waits until every IPC message queued so far is written
 * (requests whose body came over IPC are answered over IPC, sticky's FakeSocket: exiting before those
 * messages leave would leave the primary's client connections open, their clients hanging).
 */
function leaveCluster(): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    const timer = setTimeout(done, 2000);
    function done(): void {
      clearTimeout(timer);
      process.off("message", onMessage);
      resolve();
    }
    function onMessage(m: unknown): void {
      if ((m as PrimaryMessage | null)?.type !== "codespace:unrouted") return;
      setImmediate(() => {
        if (!process.connected) return done();
        process.send!({ type: "codespace:stopped" } satisfies WorkerMessage, undefined, {}, done);
      });
    }
    process.on("message", onMessage);
    process.send({ type: "codespace:stopped" } satisfies WorkerMessage, undefined, {}, () => {});
  });
}

export async function runWorker(config: Config): Promise<void> {
  // resolves once Redis answers (meanwhile it logs "waiting for Redis at host:port"): the primary
  // then routes sessions only to workers that can serve them
  const server = await createServer(config, { listen: false }).catch((err: unknown) =>
    exitOnStartupError(`codespace-cluster worker ${process.pid}`, err, config),
  );
  logUnhandledRejections(server.logger);
  setupStickyWorker(server.io);
  shareWithPrimary(server.metrics.registry);
  server.logger.info({ workerPid: process.pid }, "worker started");
  send({ type: "codespace:ready" });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return; // SIGINT from a terminal reaches every process of the group, then the primary forwards it
    stopping = true;
    server.logger.info({ signal, workerPid: process.pid }, "worker shutting down");
    send({ type: "codespace:draining" });
    const timer = setTimeout(() => {
      server.logger.error({ timeoutMs: config.shutdownTimeoutMs }, "worker shutdown timed out");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    server.close().then(
      async () => {
        await leaveCluster();
        server.logger.info({ workerPid: process.pid }, "worker stopped");
        process.exit(0);
      },
      (err: unknown) => {
        server.logger.error({ err }, "worker shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // Node exits a worker whose primary is gone (its IPC channel closed) right after this event: say
  // why, or the worker would vanish without a line
  cluster.worker?.on("disconnect", () => {
    if (!stopping) server.logger.error({ workerPid: process.pid }, "the cluster primary is gone (killed or crashed); this worker exits with it, its clients reconnect elsewhere");
  });
}
