/**
 * Presence after a crash (docs/protocol.md, "Presence"): when a server process dies without a
 * graceful shutdown (SIGKILL, OOM, power loss), the others send `user_left` for its sockets.
 *
 * Each process (random `uid`) keeps in Redis, under KEY_PREFIX:
 * - `presence:node:<uid>`: a heartbeat key, set every HEARTBEAT_MS with a TTL of NODE_TTL_MS;
 * - `presence:members:<uid>`: a hash socket id -> room of its sockets (HSET on join, HDEL on leave),
 *   kept MEMBERS_TTL_MS after the last heartbeat so the others can read it after a crash;
 * - its uid in the set `presence:nodes`.
 * Every HEARTBEAT_MS each process looks for a uid of that set whose heartbeat key is gone, reads its
 * members and sends `user_left` to ITS OWN sockets of those rooms (every survivor does the same, so
 * each socket hears it once). A crashed process's sockets are therefore announced gone within
 * NODE_TTL_MS + HEARTBEAT_MS (12 s). After every (re)connection to Redis nobody is declared dead for
 * NODE_TTL_MS, so that a Redis outage (no heartbeats) is not mistaken for crashes.
 *
 * A process taken for crashed may only have been stalled (a blocked event loop) or cut off from Redis
 * for more than NODE_TTL_MS. Whoever announces it gone also sets `presence:dead:<uid>`; the process
 * deletes that key at each heartbeat, and when it was there (the others told everyone its sockets
 * left, and clients never show a socket id again after `user_left`) it closes its sockets'
 * connections: their clients reconnect by themselves, with new ids that are announced as usual.
 * Without Redis (one process) there is nobody to tell: not used.
 */
import { randomUUID } from "node:crypto";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "./logger.js";
import type { CodespaceNamespace } from "./namespace/index.js";
import { clusterOptions, quitConnection, retryStrategy } from "./redis-connection.js";
import { PRESENCE_KEY_PART } from "./store/reserved-keys.js";

/** How often a process refreshes its heartbeat and looks for crashed ones, milliseconds. */
export const HEARTBEAT_MS = 2000;
/** A process whose heartbeat is older than this is taken for crashed, milliseconds. */
export const NODE_TTL_MS = 10_000;
/** How long a crashed process's member list stays readable, milliseconds. */
const MEMBERS_TTL_MS = 60_000;
/** Every key of this module starts with KEY_PREFIX + KEY_PART. */
const KEY_PART = PRESENCE_KEY_PART;

export interface PresenceHeartbeatOptions {
  /** One Redis (REDIS_URL); ignored with `clusterNodes`. */
  url?: string;
  /** Redis Cluster seeds (REDIS_CLUSTER_NODES): every command here touches one key, so any slot works. */
  clusterNodes?: readonly { host: string; port: number }[];
  keyPrefix: string;
  logger: Logger;
}

export class PresenceHeartbeat {
  readonly uid = randomUUID();
  private readonly redis: Redis | Cluster;
  private readonly timer: NodeJS.Timeout;
  private readonly handled = new Set<string>();
  private graceUntil = Date.now() + NODE_TTL_MS;
  private closed = false;
  /** This process's `presence:members:<uid>` key (built once, not per socket). */
  private readonly members: string;

  constructor(
    private readonly nsp: CodespaceNamespace,
    private readonly opts: PresenceHeartbeatOptions,
  ) {
    const options: RedisOptions = { lazyConnect: true, retryStrategy, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000 };
    this.redis = opts.clusterNodes
      ? new Cluster(opts.clusterNodes.map((n) => ({ host: n.host, port: n.port })), clusterOptions(options, { enableOfflineQueue: false }))
      : new Redis(opts.url ?? "", options);
    this.redis.on("error", () => {}); // visible through redis-watch.ts; failures here only delay detection
    this.redis.on("ready", () => {
      this.graceUntil = Date.now() + NODE_TTL_MS;
      void this.tick();
    });
    this.redis.connect().catch(() => {});
    this.members = this.key("members", this.uid);
    this.timer = setInterval(() => void this.tick(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** True for this module's keys (after KEY_PREFIX): their expiry or deletion is no codespace's. */
  static owns(key: string): boolean {
    return key.startsWith(KEY_PART);
  }

  private key(kind: "node" | "members" | "dead", uid: string): string {
    return `${this.opts.keyPrefix}${KEY_PART}${kind}:${uid}`;
  }

  private get nodesKey(): string {
    return `${this.opts.keyPrefix}${KEY_PART}nodes`;
  }

  /**
   * A socket of this process joined `room` (the namespace calls it after `socket.join`): listed in
   * this process's members hash. Called by the namespace rather than from a listener of each
   * socket, so an idle connection holds nothing of this module's.
   */
  joined(socketId: string, room: string): void {
    this.redis.hset(this.members, socketId, room).catch(() => {});
    // HSET may have just created the hash: give it its TTL now, not at the next heartbeat (a crash
    // before that would leave the hash, and this process in the nodes set, for good)
    this.redis.pexpire(this.members, MEMBERS_TTL_MS).catch(() => {});
  }

  /** The socket left (the namespace calls it on `disconnect`): removed from the members hash. */
  left(socketId: string): void {
    this.redis.hdel(this.members, socketId).catch(() => {});
  }

  /** Refreshes this process's heartbeat, then announces the sockets of crashed processes. */
  private async tick(): Promise<void> {
    if (this.closed || this.redis.status !== "ready") return;
    try {
      // one key per command (no MULTI): the keys may live in different Redis Cluster slots
      const [, , , declaredDead] = await Promise.all([
        this.redis.set(this.key("node", this.uid), "1", "PX", NODE_TTL_MS),
        this.redis.pexpire(this.key("members", this.uid), MEMBERS_TTL_MS),
        this.redis.sadd(this.nodesKey, this.uid),
        this.redis.del(this.key("dead", this.uid)),
      ]);
      if (declaredDead > 0) this.reconnectAll();
      if (Date.now() < this.graceUntil) return;
      for (const uid of await this.redis.smembers(this.nodesKey)) {
        if (uid === this.uid) continue;
        const alive = (await this.redis.exists(this.key("node", uid))) === 1;
        // a process taken for crashed that beats again (it was stalled, not dead) is watched again
        if (alive) this.handled.delete(uid);
        if (alive || this.handled.has(uid)) continue;
        const members = await this.redis.hgetall(this.key("members", uid));
        this.handled.add(uid);
        if (Object.keys(members).length === 0) {
          await this.redis.srem(this.nodesKey, uid); // left gracefully, or long gone
          continue;
        }
        this.opts.logger.warn({ process: uid, sockets: Object.keys(members).length }, "presence: a server process stopped sending heartbeats; its sockets are announced gone");
        for (const [id, room] of Object.entries(members)) {
          if (this.nsp.adapter.rooms.get(room)?.size) this.nsp.local.to(room).emit("user_left", { id });
        }
        // if it was only stalled, it finds this at its next heartbeat and has its sockets reconnect
        await this.redis.set(this.key("dead", uid), "1", "PX", MEMBERS_TTL_MS).catch(() => {});
      }
    } catch {
      // Redis is down or slow: try again at the next tick
    }
  }

  /**
   * The others announced this process's sockets gone (it was stalled or cut off from Redis for more
   * than NODE_TTL_MS): closes every socket's connection (engine.io transport; no DISCONNECT packet, so
   * socket.io-client reconnects by itself, with a new id that the others hear of in `user_joined`).
   */
  private reconnectAll(): void {
    const sockets = [...this.nsp.sockets.values()];
    this.opts.logger.warn(
      { sockets: sockets.length },
      "presence: the other processes took this one for crashed (no heartbeat for over 10 s: a stall or a lost Redis connection) and announced its sockets gone; closing their connections so that they reconnect and are announced again",
    );
    for (const socket of sockets) socket.conn.close();
  }

  /** Graceful stop: removes this process's keys (its sockets were disconnected: user_left sent). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    if (this.redis.status === "ready") {
      await Promise.all([
        this.redis.del(this.key("node", this.uid)),
        this.redis.del(this.members),
        this.redis.srem(this.nodesKey, this.uid),
      ]).catch(() => {});
    }
    await quitConnection(this.redis);
  }
}
