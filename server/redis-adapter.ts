/**
 * The @socket.io/redis-adapter and its two ioredis connections (publish, subscribe), which carry
 * broadcasts between processes and hosts. ioredis resubscribes by itself after a reconnect.
 */
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { connectUntilReady, quitConnection, retryStrategy } from "./redis-connection.js";

export interface RedisAdapterHandle {
  /** Pass as Socket.IO's `adapter` option. */
  adapter: ReturnType<typeof createAdapter>;
  /** True while both connections are ready (for `/readyz`). */
  isReady(): boolean;
  close(): Promise<void>;
}

/** Connects both connections (waiting through reconnects) and builds the adapter. */
export async function connectRedisAdapter(url: string): Promise<RedisAdapterHandle> {
  const handle = createRedisAdapter(url);
  await handle.connected;
  return handle;
}

/**
 * Builds the adapter at once and connects in the background (its subscriptions wait in ioredis's
 * offline queue): the server can listen, answer `/readyz` 503 and refuse handshakes while Redis is
 * not there yet. `connected` resolves at the first moment both connections are ready.
 */
export function createRedisAdapter(url: string): RedisAdapterHandle & { connected: Promise<void> } {
  const pub = new Redis(url, { lazyConnect: true, retryStrategy, maxRetriesPerRequest: null });
  const sub = pub.duplicate();
  // failures show in isReady() and the store's errors; an 'error' without a listener would throw
  for (const conn of [pub, sub]) conn.on("error", () => {});
  const adapter = createAdapter(pub, sub);
  const connected = Promise.all([connectUntilReady(pub), connectUntilReady(sub)]).then(() => {});
  connected.catch(() => {});
  return {
    connected,
    adapter,
    isReady: () => pub.status === "ready" && sub.status === "ready",
    close: async () => {
      await Promise.all([quitConnection(pub), quitConnection(sub)]);
    },
  };
}
