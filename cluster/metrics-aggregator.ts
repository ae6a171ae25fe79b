/**
 * Cluster metrics: every worker has its own prom-client registry (server/metrics.ts); the primary
 * serves their sum at METRICS_PORT (`GET /metrics`), asking every worker over the cluster IPC
 * channel (prom-client's AggregatorRegistry). Counters, gauges and histogram buckets are summed.
 * `GET /metrics` on the public port answers one worker only.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AggregatorRegistry, type Registry } from "prom-client";
import { sendMetrics } from "../server/http.js";

/** Worker side: lets the primary's aggregator read `registry` (installs prom-client's IPC listener). */
export function shareWithPrimary(registry: Registry): void {
  new AggregatorRegistry(); // constructing one installs the worker-side listener (idempotent)
  AggregatorRegistry.setRegistries([registry]);
}

/** Primary side: `GET /metrics` answered with the sum over every worker; 404 elsewhere. */
export function clusterMetricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  const aggregator = new AggregatorRegistry();
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not_found" }));
      return;
    }
    void sendMetrics(res, aggregator.contentType, aggregator.clusterMetrics());
  };
}

/** Primary side: serves `clusterMetricsHandler()` on `port`/`host`; rejects with the listen error. */
export async function serveClusterMetrics(port: number, host: string): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer(clusterMetricsHandler());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.unref();
  return { server, port: (server.address() as AddressInfo).port };
}
