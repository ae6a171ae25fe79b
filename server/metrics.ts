/**
 * The Prometheus instruments (prom-client), one Registry per server process. `createServer` wires
 * them; `http.ts` serves the registry at `GET /metrics`; in cluster mode each worker shares its
 * registry with the primary, which serves the sum (cluster/metrics-aggregator.ts).
 *
 * Every metric name starts with `codespace_`; docs/operations.md lists them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

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
  /** Commits of this process retried because another process committed to the same codespace first. */
  readonly commitConflicts: Counter;
  /**
   * Server events written to this process's sockets, by `event` (insert_value, create_selection, ...).
   * Counted with `countDelivery` (added to the counter when it is read).
   */
  readonly broadcastDeliveries: Counter<"event">;
  /** Counts one broadcast delivery of `event`: a plain increment, folded into broadcastDeliveries when read. */
  countDelivery(event: string): void;
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
}

export interface CreateMetricsOptions {
  /** Also collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

/** Histogram buckets of the accept latency, seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Creates a registry with every codespace metric. */
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
  const pendingDeliveries: Record<string, number> = Object.create(null) as Record<string, number>;
  const metrics: Metrics = {
    registry,
    countDelivery(event) {
      pendingDeliveries[event] = (pendingDeliveries[event] ?? 0) + 1;
    },
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
    commitConflicts: new Counter({
      name: "codespace_commit_conflicts_total",
      help: "Commits retried because another process committed to the same codespace first (compare-and-set on the version): each costs one more Redis round trip and a rebase",
      registers,
    }),
    broadcastDeliveries: new Counter({
      // every delivery counts, thousands a second: counted in `pendingDeliveries`, added here when read
      collect() {
        for (const event in pendingDeliveries) {
          const n = pendingDeliveries[event]!;
          if (n > 0) this.inc({ event }, n);
          pendingDeliveries[event] = 0;
        }
      },
      name: "codespace_broadcast_deliveries_total",
      help: "Server events (broadcasts) written to this process's sockets, by event: one per packet, so a batched insert_value (one whole commit, auth.batches) counts once",
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
  };
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return metrics;
}
