/**
 * Prometheus metrics (prom-client), one Registry per server instance, served at `GET /metrics`.
 *
 * Single process: `createMetrics()` gives the registry and the instruments; `createServer` wires
 * them and `http.ts` serves `metrics.handler`.
 *
 * Cluster mode (cluster/): every worker runs `createServer`, so every worker has its own registry;
 * `createMetrics()` in a worker also hands that registry to prom-client's cluster listener
 * (`AggregatorRegistry.setRegistries`). The primary calls `serveClusterMetrics(port, host)` (or
 * mounts `clusterMetricsHandler()`), which asks every worker over IPC and answers the sum
 * (`AggregatorRegistry.clusterMetrics()`). Counters and gauges are summed across workers; the
 * histogram buckets too. `GET /metrics` on a worker (the public port) answers that worker only.
 *
 * Every metric name starts with `codespace_`; docs/operations.md lists them.
 */
import cluster from "node:cluster";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Outcome labels of `codespace_auth_checks_total`. */
export type AuthOutcome =
  | "tmp"
  | "ok"
  | "cached"
  | "missing_token"
  | "invalid_token"
  | "no_api"
  | "timeout"
  | "unreachable"
  | "bad_status"
  | "malformed"
  | "aborted"
  | "share_token"
  | "token_expired"
  | "hook_failed";

export interface Metrics {
  readonly registry: Registry;
  /** Sockets connected to the `/codespace` namespace of this process (read at scrape time). */
  readonly connectedSockets: Gauge;
  /** Codespaces held open by this process (read at scrape time). */
  readonly codespacesOpen: Gauge;
  /** Updates committed by this process. */
  readonly updatesAccepted: Counter;
  /** `insert_value` batches refused, by error `code`. */
  readonly updatesRejected: Counter<"code">;
  /** Time from an `insert_value` arriving to its answer (accepted batches), seconds. */
  readonly acceptLatency: Histogram;
  /** Server events written to this process's sockets, by `event` (insert_value, create_selection, ...). */
  readonly broadcastDeliveries: Counter<"event">;
  /** Handshake token checks, by `outcome`. */
  readonly authChecks: Counter<"outcome">;
  /** Site-API calls, by `outcome` (ok, invalid_token, timeout, unreachable, bad_status, malformed, aborted). */
  readonly authApiCalls: Counter<"outcome">;
  /** Redis failures: `kind` command (a request answered store_unavailable) or connection (a client error event). */
  readonly redisErrors: Counter<"kind">;
  /** Requests refused by the per-socket rate limit, by `event`. */
  readonly rateLimited: Counter<"event">;
  /** Sockets disconnected, by `reason` (rate_limit abuse, too_many_connections). */
  readonly forcedDisconnects: Counter<"reason">;
  /** Sets where the two gauges read their values at scrape time. */
  setSources(sources: { sockets(): number; codespaces(): number }): void;
  /** `GET /metrics` request listener (Prometheus text format). */
  handler(req: IncomingMessage, res: ServerResponse): void;
}

export interface CreateMetricsOptions {
  /** Also collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

/** Histogram buckets of the accept latency, seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

async function serve(res: ServerResponse, contentType: string, body: Promise<string>): Promise<void> {
  try {
    const text = await body;
    res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
    res.end(text);
  } catch (err) {
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(`metrics unavailable: ${(err as Error).message}\n`);
  }
}

/** Creates a registry with every codespace metric (and, in a cluster worker, hands it to the primary's aggregator). */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  let sources = { sockets: () => 0, codespaces: () => 0 };

  const connectedSockets = new Gauge({
    name: "codespace_connected_sockets",
    help: "Sockets connected to the /codespace namespace",
    registers,
    collect() {
      this.set(sources.sockets());
    },
  });
  const codespacesOpen = new Gauge({
    name: "codespace_codespaces_open",
    help: "Codespaces held open (with at least one local socket or a busy accept queue)",
    registers,
    collect() {
      this.set(sources.codespaces());
    },
  });
  const metrics: Metrics = {
    registry,
    connectedSockets,
    codespacesOpen,
    updatesAccepted: new Counter({ name: "codespace_updates_accepted_total", help: "Updates committed", registers }),
    updatesRejected: new Counter({
      name: "codespace_updates_rejected_total",
      help: "insert_value batches refused, by error code",
      labelNames: ["code"] as const,
      registers,
    }),
    acceptLatency: new Histogram({
      name: "codespace_accept_latency_seconds",
      help: "Time from an insert_value arriving to its acknowledgement (accepted batches), seconds",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    broadcastDeliveries: new Counter({
      name: "codespace_broadcast_deliveries_total",
      help: "Server events (broadcasts) written to this process's sockets, by event",
      labelNames: ["event"] as const,
      registers,
    }),
    authChecks: new Counter({
      name: "codespace_auth_checks_total",
      help: "Handshake token checks, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    authApiCalls: new Counter({
      name: "codespace_auth_api_calls_total",
      help: "Site API token requests, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    redisErrors: new Counter({
      name: "codespace_redis_errors_total",
      help: "Redis failures: kind=command (a request answered store_unavailable), kind=connection (a client error event)",
      labelNames: ["kind"] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: "codespace_rate_limited_total",
      help: "Requests refused by the per-socket rate limit, by event",
      labelNames: ["event"] as const,
      registers,
    }),
    forcedDisconnects: new Counter({
      name: "codespace_forced_disconnects_total",
      help: "Sockets the server disconnected or refused for a limit, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    setSources(s) {
      sources = s;
    },
    handler(_req, res) {
      void serve(res, registry.contentType, registry.metrics());
    },
  };
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (cluster.isWorker) {
    // constructing one installs prom-client's worker-side IPC listener (idempotent)
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  return metrics;
}

/**
 * For the cluster primary: a request listener answering `GET /metrics` with the sum over every
 * worker (prom-client AggregatorRegistry, over the cluster IPC channel); 404 elsewhere.
 */
export function clusterMetricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  const aggregator = new AggregatorRegistry();
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not_found" }));
      return;
    }
    void serve(res, aggregator.contentType, aggregator.clusterMetrics());
  };
}

/** For the cluster primary: serves `clusterMetricsHandler()` on `port`/`host`; resolves once listening. */
export async function serveClusterMetrics(port: number, host: string): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer(clusterMetricsHandler());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return { server, port: (server.address() as AddressInfo).port };
}

/** Server events counted as broadcast deliveries. */
const BROADCAST_EVENTS: ReadonlySet<string> = new Set(["insert_value", "create_selection", "user_joined", "user_left", "expired"]);
/** A Socket.IO EVENT packet (type 2, no ack id) of the `/codespace` namespace: its event name. */
const EVENT_PACKET = /^2\/codespace,\["([a-z_]+)"/;

/** The part of an engine.io connection `countDeliveries` needs. */
export interface PacketSource {
  on(event: "packetCreate", fn: (packet: { type: string; data?: unknown }) => void): unknown;
  off(event: "packetCreate", fn: (packet: { type: string; data?: unknown }) => void): unknown;
}

/**
 * Counts broadcast events written to one connection (whichever process they were emitted from:
 * the adapter delivers remote broadcasts through the same write). Returns the detach function.
 */
export function countDeliveries(conn: PacketSource, metrics: Metrics): () => void {
  const onPacket = (packet: { type: string; data?: unknown }): void => {
    if (packet.type !== "message" || typeof packet.data !== "string") return;
    const m = EVENT_PACKET.exec(packet.data.length > 48 ? packet.data.slice(0, 48) : packet.data);
    if (m && BROADCAST_EVENTS.has(m[1]!)) metrics.broadcastDeliveries.inc({ event: m[1]! });
  };
  conn.on("packetCreate", onPacket);
  return () => void conn.off("packetCreate", onPacket);
}
