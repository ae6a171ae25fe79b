/**
 * A real HTTP server (node:http on 127.0.0.1, a free port) standing in for the site's API in tests.
 * It serves `GET /codespace/<token>/?fields=uuid,mode` (docs/protocol.md, "Handshake") with a
 * scripted response per token; any other request, or an unknown token, gets a JSON 404.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * How the stub answers one token. Fields combine: `delayMs` waits before anything else happens, then
 * `destroy` drops the connection, or `stallAfterFirstByte` sends the headers and the first byte of
 * the body and never finishes, or the stub answers `status` with `rawBody` verbatim or `body` as JSON.
 */
export interface StubResponse {
  /** HTTP status. Default 200. */
  status?: number;
  /** Sent as JSON. Default `{}`. */
  body?: unknown;
  /** Sent verbatim (content-type application/json), e.g. a malformed body. Wins over `body`. */
  rawBody?: string;
  /** Wait this long before answering (or stalling, or destroying). */
  delayMs?: number;
  /** Write the headers (full content-length) and the first byte of the body, then nothing more. */
  stallAfterFirstByte?: boolean;
  /** Destroy the socket without answering (a network error for the client). */
  destroy?: boolean;
}

export interface StubApi {
  /** `http://127.0.0.1:<port>/`, ready for API_BASE_URL. */
  readonly baseUrl: string;
  readonly port: number;
  /** Every request's path with query (`req.url`), in arrival order, whatever its route. */
  readonly calls: string[];
  /** Sets (or replaces) the answer for `token`. */
  setToken(token: string, response: StubResponse): void;
  /** Stops listening and destroys every open connection (stalled and delayed ones included). */
  close(): Promise<void>;
}

const PATH_RE = /^\/codespace\/([^/?]+)\/\?fields=uuid,mode$/;

/** Starts the stub. `routes` maps a token to its answer (see `setToken`). */
export async function startStubApi(routes: Record<string, StubResponse> = {}): Promise<StubApi> {
  const table = new Map<string, StubResponse>(Object.entries(routes));
  const calls: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const sendJson = (res: ServerResponse, status: number, raw: string): void => {
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(raw) });
    res.end(raw);
  };

  const answer = (req: IncomingMessage, res: ServerResponse, r: StubResponse): void => {
    if (closed || res.destroyed || req.socket.destroyed) return;
    if (r.destroy) {
      req.socket.destroy();
      return;
    }
    const status = r.status ?? 200;
    const raw = r.rawBody ?? JSON.stringify(r.body ?? {});
    if (r.stallAfterFirstByte) {
      const full = raw.length > 0 ? raw : "{}";
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(full) });
      res.write(full.slice(0, 1));
      return; // never finished; close() destroys the socket
    }
    sendJson(res, status, raw);
  };

  const server = createServer((req, res) => {
    const url = req.url ?? "";
    calls.push(url);
    const m = req.method === "GET" ? PATH_RE.exec(url) : null;
    let token: string | undefined;
    if (m) {
      try {
        token = decodeURIComponent(m[1]!);
      } catch {
        token = undefined;
      }
    }
    const r = token !== undefined ? table.get(token) : undefined;
    if (!r) {
      sendJson(res, 404, JSON.stringify({ detail: "Not found." }));
      return;
    }
    if (r.delayMs && r.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer(req, res, r);
      }, r.delayMs);
      timers.add(t);
    } else {
      answer(req, res, r);
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}/`,
    port,
    calls,
    setToken(token, response) {
      table.set(token, response);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
}
