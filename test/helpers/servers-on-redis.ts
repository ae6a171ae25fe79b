/**
 * A real `redis-server` (redis-server.ts) and `count` server processes (server-process.ts) sharing
 * it: each gets `REDIS_URL` plus the caller's `env`.
 */
import { startRedis, type RedisServerHandle } from "./redis-server.js";
import { startServerProcess, type ServerProcess } from "./server-process.js";

export interface ServersOnRedis {
  redis: RedisServerHandle;
  servers: ServerProcess[];
  /** Stops every server process, then Redis. */
  stop(): Promise<void>;
}

/** Starts Redis, then the server processes concurrently; if one fails to start, Redis is stopped and the error rethrown. */
export async function startServersOnRedis(count: number, env: Record<string, string> = {}): Promise<ServersOnRedis> {
  const redis = await startRedis();
  let servers: ServerProcess[];
  try {
    servers = await Promise.all(Array.from({ length: count }, () => startServerProcess({ REDIS_URL: redis.url, ...env })));
  } catch (err) {
    await redis.stop();
    throw err;
  }
  return {
    redis,
    servers,
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      await redis.stop();
    },
  };
}
