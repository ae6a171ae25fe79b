/**
 * A cluster worker for test/sticky-adapter.test.ts: a real Socket.IO server behind
 * setupStickyWorker (cluster/sticky-adapter.ts). Every engine.io response carries `x-worker: <pid>`.
 * STICKY_BIND_DELAY_MS > 0 delays sticky's own `sticky:connection` IPC message by that much: the
 * slow IPC path of a busy machine, where a client's next request can reach the primary first.
 */
import { createServer } from "node:http";
import { Server } from "socket.io";
import { setupStickyWorker } from "../../cluster/sticky-adapter.js";

const delay = Number(process.env.STICKY_BIND_DELAY_MS ?? 0);
if (delay > 0) {
  const send = process.send!.bind(process) as (...args: unknown[]) => boolean;
  process.send = ((message: unknown, ...rest: unknown[]) => {
    if ((message as { type?: string } | null)?.type === "sticky:connection") {
      setTimeout(() => send(message, ...rest), delay);
      return true;
    }
    return send(message, ...rest);
  }) as typeof process.send;
}

const io = new Server(createServer(), { serveClient: false });
io.engine.on("initial_headers", (headers: Record<string, string>) => (headers["x-worker"] = String(process.pid)));
io.engine.on("headers", (headers: Record<string, string>) => (headers["x-worker"] = String(process.pid)));
setupStickyWorker(io);
process.send!({ type: "test:ready" });
