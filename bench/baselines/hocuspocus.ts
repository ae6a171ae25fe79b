/**
 * Peer (e): Hocuspocus (`@hocuspocus/server`) with its Redis extension (`@hocuspocus/extension-redis`),
 * as its documentation sets it up for several processes on one Redis. The document name is the room.
 * No auth and no database extension (nothing is persisted; the extension still runs its store hook,
 * debounced, under its Redis lock). Clients speak its real protocol with Yjs (`@hocuspocus/provider`).
 *
 * Per edit it does what neither relay does: decode the Yjs update, integrate it into the server's
 * Y.Doc (CRDT merge), answer the sender with a SyncStatus ack, broadcast it to its local connections,
 * PUBLISH it to Redis for the other processes (which integrate and broadcast it too), and schedule
 * the debounced store hook.
 */
import { Server } from "@hocuspocus/server";
import { Redis as RedisExtension } from "@hocuspocus/extension-redis";
import { serveBench } from "../lib/child.js";

const redisUrl = process.env.REDIS_URL ? new URL(process.env.REDIS_URL) : undefined;
const server = new Server({
  port: Number(process.env.PORT ?? 0),
  address: process.env.HOST ?? "127.0.0.1",
  quiet: true,
  stopOnSignals: false,
  extensions: redisUrl ? [new RedisExtension({ host: redisUrl.hostname, port: Number(redisUrl.port) })] : [],
});
await server.listen();
serveBench(server.address.port, () => server.hocuspocus.getConnectionsCount(), () => server.destroy());
