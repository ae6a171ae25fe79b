/**
 * Peer (f): ShareDB (`sharedb`) with `sharedb-redis-pubsub`, ONE process with ShareDB's in-memory
 * database (the only database that needs no other server: a shared one would be MongoDB or
 * PostgreSQL), so the Redis pub/sub carries the ops but no second process shares the documents.
 * Documents are json0 `{t: string}`; clients are ShareDB's own client over `ws`
 * (`@teamwork/websocket-json-stream` on this side, as ShareDB's examples do).
 *
 * Per edit it does what the relays don't: operational transformation against the ops committed
 * since the client's version, a version check and commit in the database (a read-modify-write of
 * the snapshot and an op log entry), an ack to the submitter, and a PUBLISH to Redis from which
 * every subscribed client of the document receives the op. Its client keeps one op in flight per
 * document and composes what is typed meanwhile.
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import ShareDB from "sharedb";
import { WebSocketServer } from "ws";
import WebSocketJSONStream from "@teamwork/websocket-json-stream";
import RedisPubSub from "sharedb-redis-pubsub";
import { serveBench } from "../lib/child.js";

const redisUrl = process.env.REDIS_URL || undefined;
const backend = new ShareDB(redisUrl ? { pubsub: RedisPubSub({ url: redisUrl }) } : {});
const httpServer = createHttpServer();
const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: false });
wss.on("connection", (ws) => backend.listen(new WebSocketJSONStream(ws)));
await new Promise<void>((r) => httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", r));
serveBench((httpServer.address() as AddressInfo).port, () => wss.clients.size, async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => backend.close(() => r()));
  await new Promise<void>((r) => httpServer.close(() => r()));
});
