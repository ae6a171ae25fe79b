/**
 * Configuration: environment variables -> typed, validated (joi), frozen config.
 * Every default, with its unit, is defined here and nowhere else (docs/operations.md lists them).
 */
import { availableParallelism } from "node:os";
import Joi from "joi";

export interface Config {
  /** HTTP/WebSocket port (0: any free port). Default 8888. */
  readonly port: number;
  /** Interface to bind. Default `0.0.0.0`. */
  readonly host: string;
  /** Redis URL (`redis://host:port/db`). Unset: embedded in-memory store and adapter (one process only). */
  readonly redisUrl: string | undefined;
  /**
   * Redis Cluster seed nodes (`REDIS_CLUSTER_NODES`, comma-separated `host:port`); the rest of the
   * cluster is discovered from them. Unset: not a cluster. Mutually exclusive with `redisUrl`.
   */
  readonly redisClusterNodes: readonly { readonly host: string; readonly port: number }[] | undefined;
  /**
   * Replicas that must confirm a commit (Redis `WAIT`) before its `insert_value` is acknowledged,
   * count (0: acknowledge once the master has it). Default 0.
   */
  readonly redisWaitReplicas: number;
  /** Prefix of every codespace key in Redis (the key is `${keyPrefix}${codespace}`). Default empty. */
  readonly keyPrefix: string;
  /** Base URL of the site's HTTP API, ending in `/`. Unset: only `tmp-` tokens are accepted. */
  readonly apiBaseUrl: string | undefined;
  /** Whole-response timeout of a token check, milliseconds. Default 5000. */
  readonly apiTimeoutMs: number;
  /** Allowed CORS origins (`CORS_ORIGIN`, comma-separated; `*` any). Default: none (same origin only). */
  readonly corsOrigins: readonly string[];
  /** TTL of a codespace after its last update (and at creation), seconds. Default 86400. */
  readonly codespaceExpireUpdate: number;
  /** TTL of a `tmp-` codespace after its last update (and at creation), seconds. Default 3600. */
  readonly tmpCodespaceExpireUpdate: number;
  /** Accepted updates kept per codespace for rebasing and `pull`. Default 500. */
  readonly historyLength: number;
  /** Maximum document length, UTF-16 code units. Default 1,000,000. */
  readonly maxDocLength: number;
  /** Maximum updates in one `insert_value` batch. Default 1000. */
  readonly maxUpdatesPerBatch: number;
  /** Maximum changes in one update. Default 1000. */
  readonly maxChangesPerUpdate: number;
  /** Maximum changes in one `insert_value` batch, all updates together. Default 2000. */
  readonly maxChangesPerBatch: number;
  /**
   * Most rebasing work one batch may cost: its changes × the changes accepted since its version.
   * Beyond it the batch is refused with `invalid_version` (pull, then resend at the new version,
   * which needs no rebasing), so one far-behind batch cannot stall the process. Default 2,000,000.
   */
  readonly maxRebaseWork: number;
  /** Maximum ranges in one `create_selection`. Default 100. */
  readonly maxSelections: number;
  /** Largest Socket.IO message accepted, bytes (Socket.IO `maxHttpBufferSize`). Default 4 MiB. */
  readonly maxMessageBytes: number;
  /** Time allowed for a graceful shutdown, milliseconds. Default 10000. */
  readonly shutdownTimeoutMs: number;
  /** pino log level. Default `info`. */
  readonly logLevel: string;
  /** `insert_value` + `create_selection` events allowed per socket per `rateLimitWindowMs`, count. Default 100. */
  readonly rateLimitEvents: number;
  /** Window of the per-socket rate limit, milliseconds. Default 1000. */
  readonly rateLimitWindowMs: number;
  /** `rate_limited` refusals within 60 s after which the socket is disconnected, count (0: never). Default 50. */
  readonly rateLimitDisconnectAfter: number;
  /** Sockets allowed per codespace on one server process, count. Default 200. */
  readonly maxConnectionsPerCodespace: number;
  /** How long a successful site-API token check is reused, milliseconds (0: no cache). Default 0. */
  readonly authCacheMs: number;
  /** Most token checks kept by the auth cache, entries (oldest dropped first). Default 10000. */
  readonly authCacheMaxEntries: number;
  /** Port on which the cluster primary serves the workers' aggregated `GET /metrics` (unset: not served). Default unset. */
  readonly metricsPort: number | undefined;
  /** Worker processes forked by the cluster entry (`npm run cluster`), count. Default: the number of CPUs (`os.availableParallelism()`). */
  readonly workers: number;
}

const schema = Joi.object({
  PORT: Joi.number().integer().min(0).max(65535).default(8888),
  HOST: Joi.string().default("0.0.0.0"),
  REDIS_URL: Joi.string().uri({ scheme: ["redis", "rediss"] }),
  REDIS_CLUSTER_NODES: Joi.string().pattern(/^\s*[^\s,:]+:\d{1,5}\s*(,\s*[^\s,:]+:\d{1,5}\s*)*$/, "host:port,host:port,..."),
  REDIS_WAIT_REPLICAS: Joi.number().integer().min(0).max(100).default(0),
  KEY_PREFIX: Joi.string().allow("").default(""),
  API_BASE_URL: Joi.string().uri({ scheme: ["http", "https"] }),
  API_TIMEOUT_MS: Joi.number().integer().min(1).max(600_000).default(5000),
  CORS_ORIGIN: Joi.string().allow("").default(""),
  CODESPACE_EXPIRE_UPDATE: Joi.number().integer().min(1).default(86_400),
  TMP_CODESPACE_EXPIRE_UPDATE: Joi.number().integer().min(1).default(3600),
  HISTORY_LENGTH: Joi.number().integer().min(1).max(100_000).default(500),
  MAX_DOC_LENGTH: Joi.number().integer().min(1).max(100_000_000).default(1_000_000),
  MAX_UPDATES_PER_BATCH: Joi.number().integer().min(1).max(100_000).default(1000),
  MAX_CHANGES_PER_UPDATE: Joi.number().integer().min(1).max(100_000).default(1000),
  MAX_CHANGES_PER_BATCH: Joi.number().integer().min(1).max(1_000_000).default(2000),
  MAX_REBASE_WORK: Joi.number().integer().min(1).default(2_000_000),
  MAX_SELECTIONS: Joi.number().integer().min(1).max(10_000).default(100),
  MAX_MESSAGE_BYTES: Joi.number().integer().min(1024).default(4 * 1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: Joi.number().integer().min(0).default(10_000),
  LOG_LEVEL: Joi.string().valid("fatal", "error", "warn", "info", "debug", "trace", "silent").default("info"),
  RATE_LIMIT_EVENTS: Joi.number().integer().min(1).max(1_000_000).default(100),
  RATE_LIMIT_WINDOW_MS: Joi.number().integer().min(10).max(3_600_000).default(1000),
  RATE_LIMIT_DISCONNECT_AFTER: Joi.number().integer().min(0).max(1_000_000).default(50),
  MAX_CONNECTIONS_PER_CODESPACE: Joi.number().integer().min(1).max(1_000_000).default(200),
  AUTH_CACHE_MS: Joi.number().integer().min(0).max(3_600_000).default(0),
  AUTH_CACHE_MAX_ENTRIES: Joi.number().integer().min(1).max(10_000_000).default(10_000),
  METRICS_PORT: Joi.number().integer().min(0).max(65535),
  WORKERS: Joi.number().integer().min(1).max(1024).default(() => availableParallelism()),
})
  .unknown(true)
  .prefs({ convert: true, abortEarly: true });

/** Raised by `loadConfig`; `message` is one line naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads, validates and freezes the configuration.
 * @param env variables to read (default `process.env`); an empty string counts as unset.
 * @throws ConfigError with one line naming the offending variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && (v !== "" || k === "KEY_PREFIX")) cleaned[k] = v;
  const { value, error } = schema.validate(cleaned);
  if (error) {
    const key = String(error.details[0]?.path[0] ?? "?");
    throw new ConfigError(`invalid ${key}: ${error.details[0]?.message ?? error.message}`);
  }
  if (value.REDIS_URL && value.REDIS_CLUSTER_NODES) {
    throw new ConfigError("invalid REDIS_CLUSTER_NODES: set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  }
  const redisClusterNodes = value.REDIS_CLUSTER_NODES
    ? Object.freeze(
        String(value.REDIS_CLUSTER_NODES)
          .split(",")
          .map((s) => s.trim())
          .map((s) => Object.freeze({ host: s.slice(0, s.lastIndexOf(":")), port: Number(s.slice(s.lastIndexOf(":") + 1)) })),
      )
    : undefined;
  let apiBaseUrl: string | undefined = value.API_BASE_URL;
  if (apiBaseUrl && !apiBaseUrl.endsWith("/")) apiBaseUrl += "/";
  const corsOrigins = String(value.CORS_ORIGIN)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return Object.freeze({
    port: value.PORT,
    host: value.HOST,
    redisUrl: value.REDIS_URL,
    redisClusterNodes,
    redisWaitReplicas: value.REDIS_WAIT_REPLICAS,
    keyPrefix: value.KEY_PREFIX,
    apiBaseUrl,
    apiTimeoutMs: value.API_TIMEOUT_MS,
    corsOrigins: Object.freeze(corsOrigins),
    codespaceExpireUpdate: value.CODESPACE_EXPIRE_UPDATE,
    tmpCodespaceExpireUpdate: value.TMP_CODESPACE_EXPIRE_UPDATE,
    historyLength: value.HISTORY_LENGTH,
    maxDocLength: value.MAX_DOC_LENGTH,
    maxUpdatesPerBatch: value.MAX_UPDATES_PER_BATCH,
    maxChangesPerUpdate: value.MAX_CHANGES_PER_UPDATE,
    maxChangesPerBatch: value.MAX_CHANGES_PER_BATCH,
    maxRebaseWork: value.MAX_REBASE_WORK,
    maxSelections: value.MAX_SELECTIONS,
    maxMessageBytes: value.MAX_MESSAGE_BYTES,
    shutdownTimeoutMs: value.SHUTDOWN_TIMEOUT_MS,
    logLevel: value.LOG_LEVEL,
    rateLimitEvents: value.RATE_LIMIT_EVENTS,
    rateLimitWindowMs: value.RATE_LIMIT_WINDOW_MS,
    rateLimitDisconnectAfter: value.RATE_LIMIT_DISCONNECT_AFTER,
    maxConnectionsPerCodespace: value.MAX_CONNECTIONS_PER_CODESPACE,
    authCacheMs: value.AUTH_CACHE_MS,
    authCacheMaxEntries: value.AUTH_CACHE_MAX_ENTRIES,
    metricsPort: value.METRICS_PORT,
    workers: value.WORKERS,
  });
}
