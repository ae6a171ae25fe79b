/**
 * Every configuration variable, declared once. The `Config` type, the defaults, the validation, the
 * message for a bad value and the configuration tables of README.md and docs/operations.md all come
 * from this list (server/config.ts, server/config/docs-table.ts).
 *
 * Adding a variable is one edit here: add an entry `fieldName: variable({ env, schema, default, unit,
 * doc })` (or `optional({ ... })` when unset means "off"), where `fieldName` is the `Config` field the
 * code reads. Then run `npm run docs:config` to rewrite the two tables (test/config.test.ts fails until
 * they match). Nothing else lists the variables: the test helpers read `CONFIG_ENV_NAMES`.
 * The order here is the order of the tables.
 */
import { availableParallelism } from "node:os";
import Joi from "joi";
import { parseCorsOrigins } from "./cors-origins.js";
import { CLUSTER_NODES_PATTERN, parseClusterNodes } from "./redis-cluster-nodes.js";
import { optional, variable } from "./variable.js";

const int = () => Joi.number().integer();

export const VARIABLES = {
  port: variable({
    env: "PORT", schema: int().min(0).max(65535), default: 8888, unit: "port",
    doc: "HTTP/WebSocket port (`0`: any free port)",
  }),
  host: variable({
    env: "HOST", schema: Joi.string(), default: "0.0.0.0", unit: "",
    doc: "interface to bind",
  }),
  redisUrl: optional({
    env: "REDIS_URL", schema: Joi.string().uri({ scheme: ["redis", "rediss"] }), unit: "URL", secret: true,
    doc: "`redis://host:port/db` (or `rediss://`); unset: embedded in-memory store and adapter, one process only",
  }),
  redisClusterNodes: optional({
    env: "REDIS_CLUSTER_NODES", schema: Joi.string().pattern(CLUSTER_NODES_PATTERN, "host:port,host:port,..."), unit: "host:port list",
    doc: "seed nodes of a Redis Cluster (7.0 or later), comma-separated, instead of `REDIS_URL` (setting both is refused)",
    details: "the other nodes are discovered from them; see \"Redis Cluster\" below",
    parse: parseClusterNodes,
  }),
  redisWaitReplicas: variable({
    env: "REDIS_WAIT_REPLICAS", schema: int().min(0).max(100), default: 0, unit: "replicas",
    doc: "acknowledge an `insert_value` only once Redis `WAIT` confirms that many replicas hold it (else `store_unavailable`; the resend is deduplicated)",
    details: "`WAIT` is bounded by 300 ms; see \"Redis Cluster\" below for what a failover can lose with 0 and with 1",
  }),
  keyPrefix: variable({
    env: "KEY_PREFIX", schema: Joi.string().allow(""), default: "", unit: "",
    doc: "prefix of every codespace key in Redis (key `${KEY_PREFIX}<codespace>`) and of the adapter's channels (`${KEY_PREFIX}socket.io`): deployments with different prefixes share a Redis without seeing each other",
  }),
  apiBaseUrl: optional({
    env: "API_BASE_URL", schema: Joi.string().uri({ scheme: ["http", "https"] }), unit: "URL", secret: true,
    doc: "base URL of the site API for share tokens (`http`/`https`; a trailing `/` is added if missing); unset: only `tmp-` tokens are accepted",
    parse: (url: string) => (url.endsWith("/") ? url : `${url}/`),
  }),
  apiTimeoutMs: variable({
    env: "API_TIMEOUT_MS", schema: int().min(1).max(600_000), default: 5000, unit: "ms",
    doc: "timeout of a whole token check (connect, headers and body)",
    details: "an API that sends one byte and stalls is cut here",
  }),
  authCacheMs: variable({
    env: "AUTH_CACHE_MS", schema: int().min(0).max(3_600_000), default: 0, unit: "ms", defaultText: "`0` (off)",
    doc: "reuse a *successful* token check this long",
    details: "refusals and failures are never cached (the cache is for reconnect storms)",
  }),
  authCacheMaxEntries: variable({
    env: "AUTH_CACHE_MAX_ENTRIES", schema: int().min(1).max(10_000_000), default: 10_000, unit: "entries",
    doc: "size bound of the auth cache (oldest dropped first)",
    details: "keys are SHA-256 digests, not tokens",
  }),
  corsOrigins: variable({
    env: "CORS_ORIGIN", schema: Joi.string().allow(""), default: "", unit: "list", defaultText: "none",
    doc: "allowed CORS origins, comma-separated (`scheme://host[:port]`, or `null` for pages opened from disk; anything else is refused at start), `*` for any; none: same origin only",
    details: "allowed origins are echoed with `access-control-allow-credentials: true`, others get no `access-control-allow-origin`",
    parse: parseCorsOrigins,
  }),
  codespaceExpireUpdate: variable({
    env: "CODESPACE_EXPIRE_UPDATE", schema: int().min(1), default: 86_400, unit: "s",
    doc: "TTL of a codespace after its creation and after each update",
  }),
  tmpCodespaceExpireUpdate: variable({
    env: "TMP_CODESPACE_EXPIRE_UPDATE", schema: int().min(1), default: 3600, unit: "s",
    doc: "the same for `tmp-` codespaces",
  }),
  historyLength: variable({
    env: "HISTORY_LENGTH", schema: int().min(1).max(100_000), default: 500, unit: "updates",
    doc: "accepted updates kept per codespace for rebasing and `pull`",
  }),
  maxDocLength: variable({
    env: "MAX_DOC_LENGTH", schema: int().min(1).max(100_000_000), default: 1_000_000, unit: "UTF-16 code units",
    doc: "largest document (`doc_too_large` beyond)",
  }),
  maxUpdatesPerBatch: variable({
    env: "MAX_UPDATES_PER_BATCH", schema: int().min(1).max(100_000), default: 1000, unit: "updates",
    doc: "most updates in one `insert_value`",
  }),
  maxChangesPerUpdate: variable({
    env: "MAX_CHANGES_PER_UPDATE", schema: int().min(1).max(100_000), default: 1000, unit: "changes",
    doc: "most changes in one update",
  }),
  maxChangesPerBatch: variable({
    env: "MAX_CHANGES_PER_BATCH", schema: int().min(1).max(1_000_000), default: 2000, unit: "changes",
    doc: "most changes in one `insert_value`, all updates together",
  }),
  maxRebaseWork: variable({
    env: "MAX_REBASE_WORK", schema: int().min(1), default: 2_000_000, unit: "changes × changes",
    doc: "most rebasing one batch may cost: its changes × the changes accepted since its version; beyond it `invalid_version` (pull, resend at the new version)",
    details: "so one far-behind batch cannot stall the process",
  }),
  maxSelections: variable({
    env: "MAX_SELECTIONS", schema: int().min(1).max(10_000), default: 100, unit: "ranges",
    doc: "most ranges in one `create_selection`",
  }),
  maxMessageBytes: variable({
    env: "MAX_MESSAGE_BYTES", schema: int().min(1024), default: 4 * 1024 * 1024, unit: "bytes", defaultText: "`4194304` (4 MiB)",
    doc: "largest Socket.IO message (`maxHttpBufferSize`), at least 1024",
  }),
  rateLimitEvents: variable({
    env: "RATE_LIMIT_EVENTS", schema: int().min(1).max(1_000_000), default: 100, unit: "events",
    doc: "`insert_value` + `create_selection` allowed per socket per window (`rate_limited` beyond)",
  }),
  rateLimitWindowMs: variable({
    env: "RATE_LIMIT_WINDOW_MS", schema: int().min(10).max(3_600_000), default: 1000, unit: "ms",
    doc: "window of that rate limit",
  }),
  rateLimitDisconnectAfter: variable({
    env: "RATE_LIMIT_DISCONNECT_AFTER", schema: int().min(0).max(1_000_000), default: 50, unit: "refusals",
    doc: "`rate_limited` refusals within 60 s after which the socket is disconnected (`0`: never)",
  }),
  maxConnectionsPerCodespace: variable({
    env: "MAX_CONNECTIONS_PER_CODESPACE", schema: int().min(1).max(1_000_000), default: 200, unit: "sockets",
    doc: "sockets per codespace **per server process** (`too_many_connections` beyond)",
  }),
  shutdownTimeoutMs: variable({
    env: "SHUTDOWN_TIMEOUT_MS", schema: int().min(0), default: 10_000, unit: "ms",
    doc: "time allowed for a graceful shutdown",
  }),
  logLevel: variable({
    env: "LOG_LEVEL", schema: Joi.string().valid("fatal", "error", "warn", "info", "debug", "trace", "silent"), default: "info", unit: "",
    doc: "pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`",
  }),
  workers: variable({
    env: "WORKERS", schema: int().min(1).max(1024), default: () => availableParallelism(), unit: "processes", defaultText: "number of CPUs",
    doc: "cluster mode (`npm run cluster`): worker processes forked by the primary",
    details: "`os.availableParallelism()` by default",
  }),
  metricsPort: optional({
    env: "METRICS_PORT", schema: int().min(0).max(65535), unit: "port",
    doc: "cluster mode: the primary serves the workers' summed `GET /metrics` here; unset: not served",
  }),
  shareTokenSecret: optional({
    env: "SHARE_TOKEN_SECRET", schema: Joi.string(), unit: "", secret: true,
    doc: "the site's `SECRET_KEY`: verify its share tokens locally, no API call (docs/integration.md); unset: not verified locally",
  }),
  hookTimeoutMs: variable({
    env: "HOOK_TIMEOUT_MS", schema: int().min(1).max(600_000), default: 5000, unit: "ms",
    doc: "bound of a site's own `authenticate` hook and of the notification hooks (`onCommit`, `onConnect`, `onDisconnect`, `onExpired`)",
  }),
  saveUrl: optional({
    env: "SAVE_URL", schema: Joi.string().uri({ scheme: ["http", "https"] }), unit: "URL", secret: true,
    doc: "the site's save/load endpoint (`PUT`/`GET ${SAVE_URL}<codespace>`; a trailing `/` is added); unset: no durable saves, no loads",
    parse: (url: string) => (url.endsWith("/") ? url : `${url}/`),
  }),
  saveSecret: optional({
    env: "SAVE_SECRET", schema: Joi.string(), unit: "", secret: true,
    doc: "HMAC-SHA256 key of the `X-Codespace-Signature` header of saves and loads; required with `SAVE_URL`",
  }),
  saveDebounceMs: variable({
    env: "SAVE_DEBOUNCE_MS", schema: int().min(10).max(3_600_000), default: 2000, unit: "ms",
    doc: "a save goes out this long after the last commit (at most one save per this while edits continue)",
  }),
  saveMaxWaitMs: variable({
    env: "SAVE_MAX_WAIT_MS", schema: int().min(10).max(86_400_000), default: 10_000, unit: "ms",
    doc: "... and at the latest this long after the first unsaved commit (at least `SAVE_DEBOUNCE_MS`)",
  }),
  saveMaxRetentionS: variable({
    env: "SAVE_MAX_RETENTION_S", schema: int().min(1), default: 7 * 86_400, unit: "s", defaultText: "`604800` (7 days)",
    doc: "an unsaved codespace is kept this long after its last commit while the site cannot take it",
  }),
  saveTimeoutMs: variable({
    env: "SAVE_TIMEOUT_MS", schema: int().min(10).max(600_000), default: 10_000, unit: "ms",
    doc: "timeout of one save or load (the whole response)",
  }),
  saveLeaseMs: variable({
    env: "SAVE_LEASE_MS", schema: int().min(20).max(3_600_000), default: 30_000, unit: "ms",
    doc: "lease of a save claim: another process takes over a save this long after its owner went silent (more than `SAVE_TIMEOUT_MS`)",
  }),
  saveRetryMaxMs: variable({
    env: "SAVE_RETRY_MAX_MS", schema: int().min(10).max(3_600_000), default: 30_000, unit: "ms",
    doc: "cap of the exponential backoff (with jitter) between failed save attempts",
  }),
  dataDir: variable({
    env: "DATA_DIR", schema: Joi.string(), default: "./data", unit: "folder",
    doc: "embedded default only (no `REDIS_URL`): folder where the in-memory store keeps its codespaces across restarts (relative to the working directory); delete it to wipe them",
    details: "see \"Data folder\"",
  }),
};
