/**
 * A real HTTP server (node:http, 127.0.0.1, a free port) standing in for the site's save/load
 * endpoint (docs/integration.md): `PUT /save/<codespace>` and `GET /save/<codespace>`.
 *
 * It behaves like a careful site: it checks the signature (`X-Codespace-Signature`), keeps the
 * newest version per codespace (an older epoch, or a lower or equal version of the same epoch, gets
 * 409: docs/integration.md's rule, epochs compared as strings), and records
 * every request. `mode` scripts failures: `ok`, an HTTP status to answer, or `stall` (never
 * answers). `refuse()` stops listening (connections refused), `resume()` listens again on the same port.
 */
import { createHmac } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface SiteSave {
  codespace: string;
  epoch: string;
  version: number;
  code: string;
  idempotencyKey: string;
  /** Date.now() when taken. */
  at: number;
}

export interface SiteRequest {
  method: string;
  codespace: string;
  /** Answered status, or 0 for a stalled request. */
  status: number;
  signatureOk: boolean;
  at: number;
}

export type SiteMode = "ok" | "stall" | { status: number };

export interface StubSite {
  /** `http://127.0.0.1:<port>/save/`, for SAVE_URL. */
  readonly url: string;
  readonly secret: string;
  /** Saves taken (2xx), in order. */
  readonly saves: SiteSave[];
  /** Every request (PUT and GET), in order. */
  readonly requests: SiteRequest[];
  /** The site's copy of each codespace: what GET serves (absent: 404). */
  readonly docs: Map<string, { code: string; epoch: string; version: number }>;
  mode: SiteMode;
  /** Mode for GET only (default: follows `mode`). */
  loadMode: SiteMode | undefined;
  /** Resolves once `pred()` holds, checked after every request; rejects after `timeoutMs`. */
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Saves taken for one codespace. */
  savesOf(codespace: string): SiteSave[];
  refuse(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

function sign(secret: string, data: string): string {
  return `sha256=${createHmac("sha256", secret).update(data, "utf8").digest("hex")}`;
}

export async function startStubSite(secret = "site-save-secret"): Promise<StubSite> {
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const sockets = new Set<Socket>();
  const site = {
    saves: [] as SiteSave[],
    requests: [] as SiteRequest[],
    docs: new Map<string, { code: string; epoch: string; version: number }>(),
    mode: "ok" as SiteMode,
    loadMode: undefined as SiteMode | undefined,
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const m = /^\/save\/([^/?]+)$/.exec(req.url ?? "");
    const codespace = m ? decodeURIComponent(m[1]!) : "";
    const mode = req.method === "GET" ? (site.loadMode ?? site.mode) : site.mode;
    const expected = sign(secret, req.method === "PUT" ? body : codespace);
    const rec: SiteRequest = { method: req.method ?? "", codespace, status: 0, signatureOk: req.headers["x-codespace-signature"] === expected, at: Date.now() };
    site.requests.push(rec);
    const answer = (status: number, payload: unknown): void => {
      rec.status = status;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
      events.emit("change");
    };
    if (mode === "stall") return void events.emit("change");
    if (mode !== "ok") return answer(mode.status, { error: "scripted" });
    if (!m) return answer(404, { error: "not_found" });
    if (!rec.signatureOk) return answer(401, { error: "bad signature" });
    if (req.method === "GET") {
      const doc = site.docs.get(codespace);
      return doc ? answer(200, { code: doc.code }) : answer(404, { error: "no such codespace" });
    }
    if (req.method !== "PUT") return answer(405, {});
    const p = JSON.parse(body) as { codespace: string; epoch: string; version: number; code: string };
    const held = site.docs.get(codespace);
    if (held && (held.epoch > p.epoch || (held.epoch === p.epoch && held.version >= p.version))) return answer(409, { error: "newer held" });
    site.docs.set(codespace, { code: p.code, epoch: p.epoch, version: p.version });
    site.saves.push({ ...p, idempotencyKey: String(req.headers["idempotency-key"]), at: Date.now() });
    answer(200, { ok: true });
  };

  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => handle(req, res, body));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const stop = async (): Promise<void> => {
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    await closed;
  };

  return Object.assign(site, {
    url: `http://127.0.0.1:${port}/save/`,
    secret,
    waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
      if (pred()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!pred()) return;
          clearTimeout(timer);
          events.off("change", check);
          resolve();
        };
        const timer = setTimeout(() => {
          events.off("change", check);
          reject(new Error(`stub site: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        events.on("change", check);
      });
    },
    savesOf: (codespace: string) => site.saves.filter((s) => s.codespace === codespace),
    refuse: stop,
    resume: () => listen(port),
    close: async () => {
      if (server.listening) await stop();
    },
  });
}
