/**
 * Baseline (c): the Socket.IO relay a user would write by hand. Same namespace and events as the
 * server (docs/protocol.md) so the same load generator drives it, but no auth, no validation, no
 * versioning, no store: the token names the room, every `insert_value` update is rebroadcast to the
 * room (sender included, as the server does) and acked. With REDIS_URL, the Redis adapter.
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { serveBench } from "../lib/child.js";

interface Update {
  clientID: string;
  changes: unknown;
}

const redisUrl = process.env.REDIS_URL || undefined;
const pub = redisUrl ? new Redis(redisUrl) : undefined;
const sub = pub?.duplicate();
const httpServer = createHttpServer();
const io = new Server(httpServer, {
  serveClient: false,
  adapter: pub && sub ? createAdapter(pub, sub) : undefined,
});
const nsp = io.of("/codespace");
nsp.on("connection", (socket) => {
  const room = String((socket.handshake.auth as { token?: unknown }).token ?? "");
  socket.join(room);
  socket.emit("connected", { id: socket.id, codespace: room, mode: "edit", epoch: "relay", version: 0, code: "" });
  socket.on("insert_value", (p: { updates?: Update[] }, ack?: (r: object) => void) => {
    for (const u of p?.updates ?? []) nsp.to(room).emit("insert_value", { version: 0, clientID: u.clientID, sender: socket.id, changes: u.changes });
    ack?.({ ok: true, version: 0 });
  });
});
await new Promise<void>((r) => httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", r));
serveBench((httpServer.address() as AddressInfo).port, () => io.engine.clientsCount, async () => {
  await new Promise<void>((r) => io.close(() => r()));
  pub?.disconnect();
  sub?.disconnect();
});
