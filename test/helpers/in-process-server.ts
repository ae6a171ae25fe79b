/**
 * Starts the server in this process (`createServer(loadConfig(env))`) for tests.
 *
 * The configuration is `PORT=0 HOST=127.0.0.1 LOG_LEVEL=silent` overridden by `env` (nothing is read
 * from `process.env`); `options` go to `createServer` unchanged. `url` is `http://127.0.0.1:<port>`.
 */
import { createServer, type CodespaceServer, type CreateServerOptions } from "../../server/index.js";
import { loadConfig } from "../../server/config.js";

export interface InProcessServer {
  server: CodespaceServer;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `server.close()`: graceful shutdown. */
  close(): Promise<void>;
}

export async function startInProcessServer(env: Record<string, string> = {}, options?: CreateServerOptions): Promise<InProcessServer> {
  const server = await createServer(loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...env }), options);
  return { server, url: `http://127.0.0.1:${server.port}`, close: () => server.close() };
}
