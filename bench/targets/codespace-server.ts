/**
 * Targets (a) and (b): the real server (createServer from server/index.ts, configured from the
 * environment exactly as server/main.ts does), wrapped only to answer the bench's IPC stats requests.
 */
import { loadConfig } from "../../server/config.js";
import { createServer } from "../../server/index.js";
import { serveBench } from "../lib/child.js";

const server = await createServer(loadConfig());
const total = async (c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> => (await c.get()).values.reduce((n, v) => n + v.value, 0);
serveBench(
  server.port,
  () => server.io.engine.clientsCount,
  () => server.close(),
  async () => ({ accepted: await total(server.metrics.updatesAccepted), conflicts: await total(server.metrics.commitConflicts) }),
);
