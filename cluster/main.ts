/**
 * Cluster entry (`npm run cluster`): the primary (primary.ts) forks WORKERS copies of this file,
 * which run as workers (worker.ts). A bad setting exits 1 with one line naming it; so does a missing
 * REDIS_URL.
 */
import cluster from "node:cluster";
import { ConfigError, loadConfig, type Config } from "../server/config.js";
import { runPrimary } from "./primary.js";
import { runWorker } from "./worker.js";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`codespace-cluster: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

if (cluster.isPrimary) await runPrimary(config);
else await runWorker(config);
