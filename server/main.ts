/**
 * Process entry: read the config from the environment, start the server, shut down gracefully on
 * SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS. A bad setting exits 1 with one line naming it.
 */
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createServer } from "./index.js";

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

const server = await createServer(config).catch((err: Error) => {
  process.stderr.write(`codespace-server: could not start: ${err.message}\n`);
  process.exit(1);
});
const host = config.host === "0.0.0.0" ? "localhost" : config.host;
server.logger.info(
  { port: server.port, url: `http://${host}:${server.port}`, store: config.redisClusterNodes ? "redis-cluster" : config.redisUrl ? "redis" : "memory" },
  "listening",
);

function shutdown(signal: string): void {
  server.logger.info({ signal }, "shutting down");
  const timer = setTimeout(() => {
    server.logger.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown timed out");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  server.close().then(
    () => {
      server.logger.info("stopped");
      process.exit(0);
    },
    (err: unknown) => {
      server.logger.error({ err }, "shutdown failed");
      process.exit(1);
    },
  );
}
process.once("SIGTERM", () => shutdown("SIGTERM"));
process.once("SIGINT", () => shutdown("SIGINT"));
