/**
 * Targets (a) and (b): the real server (createServer from server/index.ts, configured from the
 * environment exactly as server/main.ts does), wrapped only to answer the bench's IPC stats requests.
 */
import { loadConfig } from "../../server/config.js";
import { createServer } from "../../server/index.js";
import { serveBench } from "../lib/child.js";

const server = await createServer(loadConfig());
serveBench(server.port, () => server.io.engine.clientsCount, () => server.close());
