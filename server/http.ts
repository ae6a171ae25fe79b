/**
 * Plain HTTP routes beside Socket.IO: `GET /healthz` (alive: 200), `GET /readyz` (200 only
 * when the store and adapter are connected and the server is not shutting down; 503 otherwise) and
 * `GET /metrics` (this process's Prometheus registry, metrics.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { serveStatic } from "./static.js";

/** Answers 200 with the metrics text `body` resolves to, or 500 when collecting fails. */
export async function sendMetrics(res: ServerResponse, contentType: string, body: Promise<string>): Promise<void> {
  try {
    const text = await body;
    res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
    res.end(text);
  } catch (err) {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(`metrics unavailable: ${(err as Error).message}\n`);
  }
}

/** `GET /metrics` request listener for one registry (Prometheus text format). */
export function metricsHandler(registry: Registry): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => void sendMetrics(res, registry.contentType, registry.metrics());
}

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
