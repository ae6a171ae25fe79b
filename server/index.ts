/**
 * createServer(config, { hooks }) -> { io, httpServer, port, close() }: wiring only.
 * The built-in hooks (builtin-hooks.ts, from the config) and a site's own hooks (hooks.ts) go through
 * the same seam: authenticate, save/load, onCommit, onConnect/onDisconnect, onExpired.
 * Without REDIS_URL: in-memory store and Socket.IO's in-memory adapter (one process).
 * With REDIS_URL: RedisStore and @socket.io/redis-adapter (any number of processes and hosts).
 * With REDIS_CLUSTER_NODES: the same on a Redis Cluster (sharded pub/sub, createShardedAdapter).
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { authMiddleware } from "./auth/authenticate.js";
import { builtinHooks } from "./builtin-hooks.js";
import { attachHookEvents } from "./hook-events.js";
import { HookFailures, mergeHooks, type Hooks } from "./hooks.js";
import { createPersistence } from "./persistence/persistence.js";
import { CodespaceRegistry } from "./codespace-registry.js";
import { checkConfig, type Config } from "./config.js";
import { httpRoutes, metricsHandler } from "./http.js";
import { createLogger, type Logger } from "./logger.js";
import { connectionCapMiddleware } from "./connection-cap.js";
import { createMetrics, type AuthOutcome, type Metrics } from "./metrics.js";
import { SocketRateLimiter } from "./rate-limit.js";
import { batchOptionMiddleware } from "./batch-option.js";
import { attachNamespace, broadcaster, expireLocally, resyncLocally, type CodespaceNamespace } from "./namespace/index.js";
import { PresenceHeartbeat } from "./presence-heartbeat.js";
import { NAMESPACE } from "./protocol/events.js";
import type { CodeStore } from "./store/code-store.js";
import { MemoryStore } from "./store/memory-store.js";
import { startRedis } from "./redis-backend.js";
import { storeReadyMiddleware } from "./store-ready.js";
import { displayNameMiddleware } from "./display-name.js";

export interface CodespaceServer {
  io: Server;
  httpServer: HttpServer;
  /** The port actually bound (useful with PORT=0). */
  port: number;
  logger: Logger;
  /** Codespaces held by this process (read-only use: tests, diagnostics). */
  registry: CodespaceRegistry;
  /** This process's Prometheus registry and instruments (served at `GET /metrics`). */
  metrics: Metrics;
  /** The per-socket rate limiter (read-only use: `size` in tests). */
  rateLimiter: SocketRateLimiter;
  /** True when the store and adapter connections are up and the server is not shutting down. */
  isReady(): boolean;
  /**
   * Graceful shutdown: stop accepting, refuse new work with `shutting_down`, finish queued
   * `insert_value` commits, disconnect sockets (clients reconnect elsewhere), close connections.
   */
  close(): Promise<void>;
}

export interface CreateServerOptions {
  logger?: Logger;
  /** Metrics registry and instruments (default: `createMetrics()`, a fresh registry). */
  metrics?: Metrics;
  /**
   * Bind config.port/config.host (default true). False for cluster workers: the primary owns the
   * port and @socket.io/sticky's `setupWorker(io)` hands each connection over; `port` is then
   * config.port.
   */
  listen?: boolean;
  /**
   * With REDIS_URL: resolve only once Redis answers (default true: embedding, tests, cluster workers,
   * which tell the primary they are ready only then). False (main.ts): resolve as soon as the port is open; until Redis answers `/readyz`
   * is 503 and handshakes are refused with `store_unavailable`.
   */
  waitForRedis?: boolean;
  /** The code store to use instead of the default one (main.ts: the persistent in-memory store). */
  store?: CodeStore;
  /**
   * A site's own hooks (docs/integration.md): its authenticate hooks are tried before the built-ins,
   * its save/load replace the HTTP sink of SAVE_URL.
   */
  hooks?: Hooks;
}

function corsOption(origins: readonly string[]) {
  if (origins.length === 0) return undefined;
  return { origin: origins.includes("*") ? true : [...origins], credentials: true };
}

/** Builds and starts a server listening on config.port/config.host. */
export async function createServer(config: Config, options: CreateServerOptions = {}): Promise<CodespaceServer> {
  checkConfig(config);
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = options.metrics ?? createMetrics();
  let shuttingDown = false;

  // With Redis, the port opens at once: until Redis answers (and whenever it is lost) /readyz is 503,
  // handshakes are refused with store_unavailable, and redis-watch.ts logs what it waits for.
  const redisTarget = config.redisClusterNodes ? { clusterNodes: config.redisClusterNodes } : config.redisUrl ? { url: config.redisUrl } : undefined;
  const redis = redisTarget && !options.store ? startRedis(redisTarget, config, logger, metrics) : undefined;
  const store: CodeStore = options.store ?? redis?.store ?? new MemoryStore({ historyLength: config.historyLength });
  const redisAdapter = redis?.adapter;

  const isStoreReady = () => (redis ? redis.isReady() : store.isReady());
  // /readyz also wants every cluster master up; handshakes only need the store (other masters work)
  const isReady = () => !shuttingDown && isStoreReady() && (redis?.store.problems().length ?? 0) === 0;

  const httpServer = createHttpServer(httpRoutes({ isReady, problems: () => redis?.store.problems() ?? [], metrics: metricsHandler(metrics.registry) }));
  const io = new Server(httpServer, {
    serveClient: false,
    maxHttpBufferSize: config.maxMessageBytes,
    cors: corsOption(config.corsOrigins),
    adapter: redisAdapter?.adapter,
    // New sessions are refused (403) once shutdown began, so clients reconnect to another process.
    allowRequest: (_req, cb) => cb(shuttingDown ? "shutting down" : null, !shuttingDown),
  });
  // "Session ID unknown", failed upgrades, ...: the typical symptoms of broken stickiness.
  io.engine.on("connection_error", (err: { code?: number; message?: string; req?: { url?: string } }) =>
    logger.warn({ code: err.code, message: err.message, url: err.req?.url }, "engine connection error"),
  );
  const nsp = io.of(NAMESPACE) as CodespaceNamespace;
  const broadcast = broadcaster(nsp);
  const failures = new HookFailures(metrics.registry, logger);
  const count = (outcome: AuthOutcome): void => metrics.authChecks.inc({ outcome });
  const builtins = builtinHooks(config, { logger, count, countCall: (outcome) => metrics.authApiCalls.inc({ outcome }) });
  const hooks = mergeHooks(options.hooks, builtins.hooks);
  const persistence = createPersistence({ config, store, hooks, logger, metrics, failures });
  const registry = new CodespaceRegistry(store, config, {
    broadcast,
    onStored: (codespace, n, commit) => {
      metrics.updatesAccepted.inc(n);
      persistence.committed(codespace);
      failures.notify("onCommit", hooks.onCommit, { codespace, ...commit }, config.hookTimeoutMs);
    },
    onConflict: () => metrics.commitConflicts.inc(),
    onEpochChanged: (codespace, epoch) => {
      const sockets = resyncLocally(nsp, codespace);
      logger.warn({ codespace, epoch, sockets }, "codespace moved to a new epoch (the store lost recent updates, or it was recreated); its sockets here reconnect to reload");
    },
  }, persistence.registry);
  metrics.setSources({ sockets: () => nsp.sockets.size, codespaces: () => registry.size });
  nsp.use(storeReadyMiddleware(isStoreReady));
  nsp.use(authMiddleware({
    hooks: hooks.authenticate, selfBounded: builtins.selfBounded, timeoutMs: config.hookTimeoutMs, logger, count, failures,
    unhandledMessage: "this server checks no share tokens: set API_BASE_URL or SHARE_TOKEN_SECRET (only tmp- tokens work without them)",
  }));
  nsp.use(displayNameMiddleware());
  nsp.use(batchOptionMiddleware());
  nsp.use(connectionCapMiddleware(nsp, { limit: config.maxConnectionsPerCodespace, logger, metrics }));
  persistence.attach(nsp);
  attachHookEvents(nsp, hooks, failures, config.hookTimeoutMs);
  const rateLimiter = new SocketRateLimiter(config);
  // user_left for the sockets of a crashed peer process (presence-heartbeat.ts)
  const heartbeat = redisTarget && redis ? new PresenceHeartbeat(nsp, { ...redisTarget, keyPrefix: config.keyPrefix, logger }) : undefined;
  attachNamespace(nsp, { config, registry, logger, isShuttingDown: () => shuttingDown, metrics, rateLimiter, membership: heartbeat, crossProcess: redisAdapter !== undefined });
  store.onExpired((codespace) => {
    if (heartbeat && PresenceHeartbeat.owns(codespace)) return; // a presence key, not a codespace
    persistence.expired(codespace);
    // Redis reports every key of the database (KEY_PREFIX may be empty): only a codespace this
    // process holds is logged, expired for its sockets and passed to onExpired
    if (!registry.held(codespace)) return;
    registry.invalidate(codespace);
    expireLocally(nsp, codespace);
    logger.info({ codespace }, "codespace expired");
    failures.notify("onExpired", hooks.onExpired, { codespace }, config.hookTimeoutMs);
  });
  persistence.start();

  if (options.listen !== false) {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
  }
  const port = options.listen !== false ? (httpServer.address() as AddressInfo).port : config.port;
  if (redis && options.waitForRedis !== false) await redis.ready;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      shuttingDown = true;
      httpServer.close();
      await registry.idle();
      // io.close() closes every socket's transport: clients see "transport close" and reconnect by
      // themselves (a DISCONNECT packet first, as disconnectSockets sends, reads "io server
      // disconnect", after which socket.io-client does not reconnect)
      await new Promise<void>((r) => io.close(() => r()));
      httpServer.closeAllConnections();
      await heartbeat?.close();
      // what this process owes is saved now, or left claimable in the store (never lost)
      await persistence.close(Math.max(100, Math.floor(config.shutdownTimeoutMs / 2)));
      await (redis ? redis.close() : store.close());
    })());

  return { io, httpServer, port, logger, registry, metrics, rateLimiter, isReady, close };
}
