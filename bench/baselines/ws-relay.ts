/**
 * Baseline (d): raw `ws`, the practical limit for Node here. A client joins the room named by
 * `?room=`; every text frame it sends is framed ONCE (WebSocket.Sender.frame, as Socket.IO's
 * broadcast does) and the same bytes are written to every member of the room, the sender included.
 */
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as wsModule from "ws";
import { WebSocket, WebSocketServer } from "ws";
import { serveBench } from "../lib/child.js";

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
/** `ws` exports Sender.frame at runtime; its type declarations do not. */
const frameOf = (wsModule as unknown as { Sender: { frame(data: Buffer, o: FrameOptions): Buffer[] } }).Sender.frame;

interface SenderInternals {
  _sender?: { sendFrame(list: Buffer[], cb?: (err?: Error) => void): void };
}

const rooms = new Map<string, Set<WebSocket>>();
const httpServer = createHttpServer();
const wss = new WebSocketServer({ server: httpServer });
wss.on("connection", (ws, req) => {
  const room = new URL(req.url ?? "/", "http://x").searchParams.get("room") ?? "";
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Set()));
  members.add(ws);
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const frame = frameOf(data, { fin: true, rsv1: false, opcode: isBinary ? 2 : 1, mask: false, readOnly: false });
    for (const m of members) {
      if (m.readyState !== WebSocket.OPEN) continue;
      const sender = (m as unknown as SenderInternals)._sender;
      if (sender) sender.sendFrame(frame);
      else m.send(data, { binary: isBinary });
    }
  });
  ws.on("close", () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
});
await new Promise<void>((r) => httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", r));
serveBench((httpServer.address() as AddressInfo).port, () => wss.clients.size, async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  await new Promise<void>((r) => httpServer.close(() => r()));
});
