/** The two bench-only packages that ship no types (ShareDB's transport adapter and Redis pub/sub). */
declare module "@teamwork/websocket-json-stream" {
  import type { Duplex } from "node:stream";
  import type { WebSocket } from "ws";
  export default class WebSocketJSONStream extends Duplex {
    constructor(ws: WebSocket);
  }
}
declare module "sharedb-redis-pubsub" {
  import type ShareDB from "sharedb";
  export default function RedisPubSub(options: { url?: string }): ShareDB.PubSub;
}
