/**
 * Plain HTTP routes beside Socket.IO: `GET /healthz` (alive: 200) and `GET /readyz` (200 only
 * when the store and adapter are connected and the server is not shutting down; 503 otherwise).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { serveStatic } from "./static.js";

export interface HttpRoutesOptions {
  /** Readiness for load balancers. */
  isReady(): boolean;
  /** While not ready: what is down (e.g. `master 10.0.0.3:6379 is down`), listed in `/readyz`'s body as `problems`. */
  problems?(): string[];
  /** `GET /metrics` (Prometheus text format, metrics.ts); absent: 404. */
  metrics?: (req: IncomingMessage, res: ServerResponse) => void;
}

function send(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** Request listener for every path Socket.IO does not own. */
export function httpRoutes(opts: HttpRoutesOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return send(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/favicon.ico") return void res.writeHead(204).end(); // no icon; no console error
    if (req.method === "GET" && path === "/readyz") {
      const ready = opts.isReady();
      const problems = ready ? [] : (opts.problems?.() ?? []);
      return send(res, ready ? 200 : 503, { status: ready ? "ready" : "unavailable", ...(problems.length > 0 && { problems }) });
    }
    if (req.method === "GET" && path === "/metrics" && opts.metrics) return opts.metrics(req, res);
    if (serveStatic(req, res, path ?? "/")) return; // the demo page and browser bundle (static.ts)
    send(res, 404, { error: "not_found" });
  };
}
