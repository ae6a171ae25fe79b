/**
 * ioredis connection policy shared by the code store and the Socket.IO adapter: reconnect forever
 * with capped backoff, wait for the first `ready`, close without hanging when Redis is down. The same
 * for one Redis (`Redis`) and a Redis Cluster (`Cluster`, `clusterOptions`).
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { StoreUnavailableError } from "./errors.js";

/** ioredis `retryStrategy`: reconnect after 50, 100, 200, ... ms, capped at 2 s; never gives up. */
export function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 6), 2000);
}

/**
 * Connects a `lazyConnect` connection and resolves at its first `ready`, riding over failed attempts
 * (ioredis keeps retrying). @throws StoreUnavailableError when the connection is closed first.
 */
export function connectUntilReady(conn: Redis | Cluster): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      conn.off("end", onEnd);
      resolve();
    };
    const onEnd = (): void => {
      conn.off("ready", onReady);
      reject(new StoreUnavailableError("the Redis connection was closed before it became ready"));
    };
    conn.once("ready", onReady);
    conn.once("end", onEnd);
    conn.connect().catch(() => {});
  });
}

/** QUIT when connected (flushes pending replies), otherwise drop the connection at once. */
export async function quitConnection(conn: Redis | Cluster): Promise<void> {
  if (conn.status === "end") return;
  if (conn.status !== "ready") {
    conn.disconnect();
    return;
  }
  try {
    await conn.quit();
  } catch {
    conn.disconnect();
  }
}

/**
 * ioredis `Cluster` options with the same policy: the cluster reconnects forever (`retryStrategy`);
 * a node's connection is dropped when it closes and the slot map is refreshed (ioredis's default),
 * and the slot map is also re-read every second so a failover is followed within about a second
 * even when no command hit the old master. `redisOptions` apply to every node's connection.
 */
export function clusterOptions(redisOptions: RedisOptions, extra: ClusterOptions = {}): ClusterOptions {
  return {
    lazyConnect: true,
    clusterRetryStrategy: retryStrategy,
    slotsRefreshInterval: 1000,
    slotsRefreshTimeout: 1000,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    redisOptions,
    ...extra,
  };
}
