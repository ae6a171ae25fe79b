/**
 * Load-generator connections to the peers, speaking their real client protocols, with the same
 * accounting as ours: every edit inserts `"<writer>.<seq> "` at position 0, and every receiver reports
 * each token it sees arrive. Neither peer echoes an edit to its sender (the sender's copy changed
 * locally), so the sender's own delivery is counted when the server acknowledges the edit (Hocuspocus:
 * its SyncStatus answer; ShareDB: the submitOp callback): the same point at which our server's echo
 * reaches the sender. Tokens that arrive together (merged Yjs updates, composed ShareDB ops) are
 * reported in (writer, seq) order, since they arrive at the same instant.
 */
import { WebSocket } from "ws";
import * as Y from "yjs";
import { HocuspocusProvider, HocuspocusProviderWebsocket } from "@hocuspocus/provider";
import { Connection } from "sharedb/lib/client/index.js";
import { CONNECT_TIMEOUT_MS, type Conn, type ConnHandlers } from "./conn.js";

const TOKEN = /(\d+)\.(\d+) /g;

/** Reports every `<writer>.<seq>` token of `inserted` to `h`, in (writer, seq) order. */
function deliverTokens(inserted: string[], h: ConnHandlers): void {
  const ids: [number, number][] = [];
  for (const s of inserted) for (const m of s.matchAll(TOKEN)) ids.push([Number(m[1]), Number(m[2])]);
  if (ids.length > 1) ids.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const [w, seq] of ids) h.onUpdate(`${w}.${seq}`, 0);
}

function withConnectTimeout<T>(what: string, start: (resolve: (v: T) => void, reject: (e: Error) => void) => () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    let cleanup = (): void => {};
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not ready within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    cleanup = start(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        cleanup();
        reject(e);
      },
    );
  });
}

/** A Hocuspocus provider (Yjs document `room`, Y.Text "t"), no awareness (the load has no presence). */
export function connectHocuspocus(url: string, room: string, h: ConnHandlers): Promise<Conn> {
  return withConnectTimeout(`hocuspocus ${url}`, (resolve) => {
    const socket = new HocuspocusProviderWebsocket({ url: url.replace(/^http/, "ws"), WebSocketPolyfill: WebSocket });
    const doc = new Y.Doc();
    const text = doc.getText("t");
    const provider = new HocuspocusProvider({ websocketProvider: socket, name: room, document: doc, awareness: null });
    const unacked: { clientID: string; ack: (res: { ok: boolean }) => void }[] = [];
    let prev = 0;
    provider.on("unsyncedChanges", ({ number }: { number: number }) => {
      // each decrement is one SyncStatus ack from the server, in the order the updates were sent
      for (let i = number; i < prev; i++) {
        const u = unacked.shift();
        if (!u) break;
        h.onUpdate(u.clientID, 0);
        u.ack({ ok: true });
      }
      prev = number;
    });
    text.observe((event, tr) => {
      if (tr.local) return;
      const inserted: string[] = [];
      for (const d of event.delta) if (typeof d.insert === "string") inserted.push(d.insert);
      deliverTokens(inserted, h);
    });
    const close = (): void => {
      provider.destroy();
      socket.destroy();
    };
    provider.on("synced", () =>
      resolve({
        sendEdit(clientID, _seq, ack) {
          unacked.push({ clientID, ack });
          text.insert(0, `${clientID} `);
        },
        close,
      }),
    );
    provider.attach();
    return close;
  });
}

/** A ShareDB client on its own websocket, subscribed to json0 document `bench/<room>` `{t: string}`. */
export function connectSharedb(url: string, room: string, h: ConnHandlers): Promise<Conn> {
  return withConnectTimeout(`sharedb ${url}`, (resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"), { perMessageDeflate: false });
    const connection = new Connection(ws as never);
    const doc = connection.get("bench", room);
    const close = (): void => {
      doc.destroy();
      connection.close();
    };
    // losing the race to create the document also surfaces as an 'error' event: the document exists
    doc.on("error", (err) => {
      if ((err as { code?: unknown }).code !== "ERR_DOC_ALREADY_CREATED") process.stderr.write(`sharedb doc error: ${String(err)}\n`);
    });
    doc.on("op", (op: unknown, source: unknown) => {
      if (source) return; // our own op: counted at its ack
      const inserted: string[] = [];
      for (const c of op as { si?: string }[]) if (typeof c.si === "string") inserted.push(c.si);
      deliverTokens(inserted, h);
    });
    const ready = (): void =>
      resolve({
        sendEdit(clientID, _seq, ack) {
          doc.submitOp([{ p: ["t", 0], si: `${clientID} ` }], undefined, (err?: unknown) => {
            if (err) return ack({ ok: false, error: { code: String((err as { code?: unknown }).code ?? "sharedb_error") } });
            h.onUpdate(clientID, 0);
            ack({ ok: true });
          });
        },
        close,
      });
    doc.subscribe((err?: unknown) => {
      if (err) return reject(err as Error);
      if (doc.type) return ready();
      doc.create({ t: "" }, (err2?: unknown) => {
        // a room member that lost the race to create it: the document arrives through the subscription
        if (err2 && (err2 as { code?: string }).code !== "ERR_DOC_ALREADY_CREATED") return reject(err2 as Error);
        if (doc.type) return ready();
        doc.fetch((err3?: unknown) => (err3 ? reject(err3 as Error) : ready()));
      });
    });
    return close;
  });
}
