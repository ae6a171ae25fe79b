/**
 * Process entry: read the config from the environment, start the server, shut down gracefully on
 * SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS (which also writes the in-memory store's DATA_DIR).
 * Every startup failure (a bad setting, the port taken, DATA_DIR unwritable, ...) exits 1 with one
 * line on stderr (startup-error.ts).
 */
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createServer } from "./index.js";
import { createLogger } from "./logger.js";
import { logUnhandledRejections } from "./process-guards.js";
import { exitOnStartupError } from "./startup-error.js";
import { PersistentMemoryStore } from "./store/persistent-memory-store.js";
import { listenUrl } from "./listen-url.js";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`codespace-server: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const fail = (err: unknown): never => exitOnStartupError("codespace-server", err, config);

const logger = createLogger(config.logLevel);
logUnhandledRejections(logger);
// Without Redis, the embedded store keeps its codespaces in DATA_DIR across restarts.
const store = config.redisUrl || config.redisClusterNodes
  ? undefined
  : await PersistentMemoryStore.open({ historyLength: config.historyLength, dataDir: config.dataDir, logger }).catch(fail);
const server = await createServer(config, { logger, store, waitForRedis: false }).catch(fail);
server.logger.info(
  { port: server.port, url: listenUrl(config.host, server.port), store: config.redisClusterNodes ? "redis-cluster" : config.redisUrl ? "redis" : "memory", dataDir: store?.dataDir },
  "listening",
);

/** Logs without ever throwing: a log destination that is gone (EPIPE) must not stop a shutdown. */
function log(level: "info" | "error", obj: object, msg: string): void {
  try {
    server.logger[level](obj, msg);
  } catch {
    // nowhere to write: the exit code still says how the shutdown went
  }
}

function shutdown(signal: string): void {
  // the bound comes first, so nothing below can keep the process alive past SHUTDOWN_TIMEOUT_MS
  const timer = setTimeout(() => {
    log("error", { timeoutMs: config.shutdownTimeoutMs }, "shutdown timed out");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  log("info", { signal }, "shutting down");
  server.close().then(
    () => {
      log("info", {}, "stopped");
      process.exit(0);
    },
    (err: unknown) => {
      log("error", { err }, "shutdown failed");
      process.exit(1);
    },
  );
}
process.once("SIGTERM", () => shutdown("SIGTERM"));
process.once("SIGINT", () => shutdown("SIGINT"));
