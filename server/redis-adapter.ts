/**
 * The @socket.io/redis-adapter and its two ioredis connections (publish, subscribe), which carry
 * broadcasts between processes and hosts. ioredis resubscribes by itself after a reconnect (and,
 * on a cluster, after a failover moved a shard to its new master).
 *
 * One Redis: `createAdapter` (classic pub/sub). Redis Cluster: `createShardedAdapter` (Redis 7
 * sharded pub/sub, SPUBLISH/SSUBSCRIBE; ioredis `Cluster` with `shardedSubscribers: true`), so a
 * broadcast costs the shard of its channel instead of being copied to every node of the cluster.
 */
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Cluster, Redis } from "ioredis";
import { clusterOptions, connectUntilReady, quitConnection, retryStrategy } from "./redis-connection.js";

export interface RedisAdapterHandle {
  /** Pass as Socket.IO's `adapter` option. */
  adapter: ReturnType<typeof createAdapter> | ReturnType<typeof createShardedAdapter>;
  /** True while both connections are ready (for `/readyz`). */
  isReady(): boolean;
  close(): Promise<void>;
}

/** Where the adapter connects: one Redis (`url`) or a Redis Cluster (`clusterNodes` seeds). */
export type RedisTarget = { url: string } | { clusterNodes: readonly { host: string; port: number }[] };

/**
 * Builds the adapter at once and connects in the background (its subscriptions wait in ioredis's
 * offline queue): the server can listen, answer `/readyz` 503 and refuse handshakes while Redis is
 * not there yet. `connected` resolves at the first moment both connections are ready.
 */
export function createRedisAdapter(target: string | RedisTarget, keyPrefix = ""): RedisAdapterHandle & { connected: Promise<void> } {
  // KEY_PREFIX separates deployments sharing one Redis: their broadcasts (selections, presence)
  // too, not only their keys; with the default "" the channels are Socket.IO's usual ones
  const channels = `${keyPrefix}socket.io`;
  const t: RedisTarget = typeof target === "string" ? { url: target } : target;
  const nodeOptions = { retryStrategy, maxRetriesPerRequest: null };
  let pub: Redis | Cluster;
  let sub: Redis | Cluster;
  if ("clusterNodes" in t) {
    const seeds = t.clusterNodes.map((n) => ({ host: n.host, port: n.port }));
    pub = new Cluster(seeds, clusterOptions(nodeOptions));
    sub = new Cluster(seeds, clusterOptions(nodeOptions, { shardedSubscribers: true }));
  } else {
    pub = new Redis(t.url, { lazyConnect: true, ...nodeOptions });
    sub = pub.duplicate();
  }
  // failures show in isReady() and the store's errors; an 'error' without a listener would throw
  for (const conn of [pub, sub]) conn.on("error", () => {});
  if (sub instanceof Cluster) retrySubscriptions(sub);
  const adapter =
    "clusterNodes" in t
      ? // "dynamic": one sharded channel per codespace room (socket-id rooms stay on the main
        // channel). Rooms are many and short-lived, but a room costs only one SSUBSCRIBE when its
        // first socket joins a process and one SUNSUBSCRIBE when its last leaves, while in return a
        // room's selections and presence reach only the processes that host it and the rooms spread
        // over every shard; "static" would put every broadcast of every codespace on one channel,
        // i.e. one shard delivering everything to every process.
        createShardedAdapter(pub, sub, { subscriptionMode: "dynamic", channelPrefix: channels })
      : // answers to requests (presence lists, fetchSockets) go to the asking process only, not to
        // every process (each would parse and drop it); every process listens on its own response
        // channel whatever this option, so processes with and without it work together
        createAdapter(pub, sub, { publishOnSpecificResponseChannel: true, key: channels });
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

/** Delay before a failed SSUBSCRIBE of a still-wanted channel is tried again, ms. */
const RESUBSCRIBE_DELAY_MS = 1000;

/**
 * The sharded adapter calls `ssubscribe`/`sunsubscribe` without handling their promise (a room's
 * channel is subscribed when its first socket joins). While the master of the channel's slot is
 * down ioredis rejects them ("No sharded subscriber for slot"): unhandled, that would crash the
 * process, and the room would never be subscribed. Here a rejected SSUBSCRIBE is retried every
 * second for as long as the channel is wanted (until its SUNSUBSCRIBE), and SUNSUBSCRIBE failures are
 * ignored (the connection they concern is gone).
 */
function retrySubscriptions(sub: Cluster): void {
  const wanted = new Set<string>();
  const ssubscribe = sub.ssubscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
  const sunsubscribe = sub.sunsubscribe.bind(sub) as (...channels: string[]) => Promise<unknown>;
  const attempt = (channels: string[]): Promise<unknown> =>
    ssubscribe(...channels).catch(() => {
      setTimeout(() => {
        const still = channels.filter((c) => wanted.has(c));
        if (still.length > 0 && sub.status !== "end") void attempt(still);
      }, RESUBSCRIBE_DELAY_MS).unref();
    });
  Object.assign(sub, {
    ssubscribe: (...channels: string[]) => {
      for (const c of channels) wanted.add(c);
      return attempt(channels);
    },
    sunsubscribe: (...channels: string[]) => {
      for (const c of channels) wanted.delete(c);
      return sunsubscribe(...channels).catch(() => 0);
    },
  });
}
