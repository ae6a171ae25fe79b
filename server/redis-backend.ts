/**
 * The Redis side of a server process: the RedisStore and the Socket.IO Redis adapter, started in
 * the background so that the process listens at once (redis-watch.ts logs the wait, the loss and
 * the return of Redis). Ready once both are connected and the store has subscribed.
 */
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { createRedisAdapter, type RedisAdapterHandle, type RedisTarget } from "./redis-adapter.js";
import { redisTarget, watchRedis } from "./redis-watch.js";
import { RedisStore } from "./store/redis-store.js";

export interface RedisBackend {
  store: RedisStore;
  adapter: RedisAdapterHandle;
  /** Resolves the first time the store is started and both adapter connections are ready. */
  ready: Promise<void>;
  /** True while the store (started) and both adapter connections are up. */
  isReady(): boolean;
  /** Stops watching, closes the store then the adapter (also while still waiting for Redis). */
  close(): Promise<void>;
}

/**
 * Creates the store and the adapter for one Redis (REDIS_URL: `{ url }`) or a Redis Cluster
 * (REDIS_CLUSTER_NODES: `{ clusterNodes }`) and connects them in the background.
 */
export function startRedis(target: RedisTarget, config: Config, logger: Logger, metrics: Metrics): RedisBackend {
  /** The last Redis connection error, or a setting that keeps the store from starting: named in the watch's lines. */
  let lastError: string | undefined;
  const store = new RedisStore({
    ...target,
    waitReplicas: config.redisWaitReplicas,
    keyPrefix: config.keyPrefix,
    historyLength: config.historyLength,
    logger,
    onConnectionError: (err) => {
      lastError = err.message;
      metrics.redisErrors.inc({ kind: "connection" });
    },
  });
  let started = false;
  let closing = false;
  const starting = store.start().then(() => {
    started = true;
  });
  starting.catch((err: Error) => {
    if (closing) return logger.debug({ err: err.message }, "redis store start abandoned");
    lastError = err.message; // a setting to fix: repeated by every "waiting for Redis" line
    logger.error({ err: err.message }, "the Redis store cannot start");
  });
  const adapter = createRedisAdapter(target, config.keyPrefix);
  const ready = Promise.all([starting, adapter.connected]).then(() => {});
  ready.catch(() => {});
  const isReady = (): boolean => started && store.isReady() && adapter.isReady();
  const where = "url" in target ? redisTarget(target.url) : `the Redis Cluster of ${target.clusterNodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
  const watch = watchRedis(isReady, where, logger, () => lastError);
  return {
    store,
    adapter,
    ready,
    isReady,
    close: async () => {
      closing = true;
      watch.stop();
      await store.close();
      await adapter.close();
    },
  };
}
