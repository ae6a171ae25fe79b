/**
 * Follows the masters of a Redis Cluster for the code store: keyspace notifications (expiry,
 * deletion) are emitted only by the node that owns the key, so this keeps one subscriber
 * connection per master that serves slots, and re-reads the slot map (`CLUSTER SLOTS`) every
 * `intervalMs` to follow failovers (a promoted replica), added masters and moved slots.
 *
 * On every master it sets `notify-keyspace-events` to include `Kgx` (as RedisStore does on one
 * Redis) and PSUBSCRIBEs the codespace keys' keyspace channel. Each time a master's subscription is
 * (re)established, `onSubscribed` runs: events emitted while nobody listened there (during a
 * failover, before a new master was seen) are lost, so the store then checks the codespaces it
 * holds (see RedisStore) — no expiry is missed, only noticed a little later.
 *
 * Health, for `/readyz` and one log line per change: `problems()` names every master whose
 * connection is down, slots without a master, and a slot map that could not be read for 3 s.
 */
import { Redis, type Cluster, type RedisOptions } from "ioredis";
import { quitConnection, retryStrategy } from "../redis-connection.js";

export interface ClusterMastersOptions {
  /** The store's command connection (reads `CLUSTER SLOTS`). */
  cluster: Cluster;
  /** Options of every node connection (password, TLS, ...), as given to the Cluster. */
  redisOptions: RedisOptions;
  /** PSUBSCRIBE pattern of the codespace keys' keyspace channel. */
  pattern: string;
  /** Keyspace event `event` (e.g. `expired`, `del`) on `channel`. */
  onEvent(channel: string, event: string): void;
  /** A master's keyspace subscription was (re)established (address `host:port`). */
  onSubscribed(master: string): void;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Period of the slot-map refresh, ms. Default 1000. */
  intervalMs?: number;
}

/** Keyspace events the store needs: K keyspace channel, g generic (del), x expired. */
const NEEDED_FLAGS = ["K", "g", "x"];
const SLOTS = 16384;
/** The slot map counts as unreadable after this long without a successful CLUSTER SLOTS, ms. */
const STALE_MS = 3000;
/** Longest start() waits for masters that do not answer, ms. */
const START_WAIT_MS = 5000;

/**
 * A master just added (a replica promoted by a failover, a new node) counts as down only if it is
 * still not subscribed this long after it appeared, ms: connecting and subscribing takes a moment,
 * and a healthy new master must not be logged as down.
 */
const CONNECT_GRACE_MS = 3000;

interface Master {
  conn: Redis;
  subscribed: boolean;
  /** When it was added (ms); until CONNECT_GRACE_MS after, "not subscribed yet" is not "down". */
  addedAt: number;
  /** Subscribed at least once: from then on, not subscribed means down. */
  wasSubscribed: boolean;
}

export class ClusterMasters {
  private readonly masters = new Map<string, Master>();
  private uncovered: string[] = [];
  private lastRead = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastReport = "";
  private configWarned = false;
  /** No reports while start() connects to the masters for the first time. */
  private started = false;

  constructor(private readonly options: ClusterMastersOptions) {}

  /**
   * Reads the slot map and subscribes on every master; resolves once every master is subscribed, or
   * after `START_WAIT_MS` with some still down (the server then starts, not ready, and says which).
   */
  async start(): Promise<void> {
    await this.refresh();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(
        [...this.masters.values()].map(
          (m) => new Promise<void>((resolve) => (m.subscribed ? resolve() : m.conn.once("subscribed", () => resolve()))),
        ),
      ),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, START_WAIT_MS))),
    ]);
    clearTimeout(timer);
    this.started = true;
    this.report();
    const tick = (): void => {
      this.timer = setTimeout(() => void this.refresh().finally(() => !this.closed && tick()), this.options.intervalMs ?? 1000);
    };
    tick();
  }

  /** True while the slot map could be read lately (some master answers): the store is usable, maybe not everywhere. */
  reachable(): boolean {
    return Date.now() - this.lastRead <= STALE_MS;
  }

  /** What keeps the cluster from being fully served, as short phrases (empty: healthy). */
  problems(): string[] {
    const out: string[] = [];
    if (Date.now() - this.lastRead > STALE_MS) out.push(`cluster unreachable (no node answered CLUSTER SLOTS for ${STALE_MS / 1000} s)`);
    const now = Date.now();
    for (const [addr, m] of this.masters) {
      if (!m.subscribed && (m.wasSubscribed || now - m.addedAt > CONNECT_GRACE_MS)) out.push(`master ${addr} is down`);
    }
    if (this.uncovered.length > 0) out.push(`no master for slots ${this.uncovered.join(",")}`);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.all([...this.masters.values()].map((m) => quitConnection(m.conn)));
    this.masters.clear();
  }

  /** One CLUSTER SLOTS: add masters that appeared, drop those that no longer serve slots, log changes. */
  private async refresh(): Promise<void> {
    try {
      const reply = (await this.options.cluster.cluster("SLOTS")) as unknown as [number, number, [string, number]?][];
      const seen = new Set<string>();
      let covered = 0;
      const ranges: [number, number][] = [];
      for (const [from, to, master] of reply) {
        if (!master) continue;
        seen.add(`${master[0]}:${master[1]}`);
        covered += to - from + 1;
        ranges.push([from, to]);
      }
      this.uncovered = covered === SLOTS ? [] : gaps(ranges);
      this.lastRead = Date.now();
      if (this.closed) return;
      for (const addr of seen) if (!this.masters.has(addr)) this.add(addr);
      for (const [addr, m] of this.masters) {
        if (seen.has(addr)) continue;
        this.masters.delete(addr);
        void quitConnection(m.conn);
      }
    } catch {
      // unreadable now; problems() reports it once it lasts
    }
    this.report();
  }

  private add(addr: string): void {
    const i = addr.lastIndexOf(":");
    const conn = new Redis({
      ...this.options.redisOptions,
      host: addr.slice(0, i),
      port: Number(addr.slice(i + 1)),
      retryStrategy,
      maxRetriesPerRequest: null,
      autoResubscribe: false, // resubscribed below, then onSubscribed
      lazyConnect: false,
    });
    const m: Master = { conn, subscribed: false, addedAt: Date.now(), wasSubscribed: false };
    this.masters.set(addr, m);
    conn.on("error", () => {});
    conn.on("close", () => {
      const was = m.subscribed;
      m.subscribed = false;
      if (was) this.report();
    });
    conn.on("pmessage", (_pattern: string, channel: string, event: string) => this.options.onEvent(channel, event));
    conn.on("ready", () => void this.subscribe(addr, m));
  }

  private async subscribe(addr: string, m: Master): Promise<void> {
    try {
      await this.ensureNotifications(m.conn);
      await m.conn.psubscribe(this.options.pattern);
      m.subscribed = m.wasSubscribed = true;
      m.conn.emit("subscribed");
      this.report();
      this.options.onSubscribed(addr);
    } catch {
      // the connection dropped again; the next 'ready' retries
    }
  }

  /** Makes sure notify-keyspace-events contains K, g and x on this master; warns once if refused. */
  private async ensureNotifications(conn: Redis): Promise<void> {
    try {
      const reply = (await conn.config("GET", "notify-keyspace-events")) as string[];
      const flags = reply[1] ?? "";
      const has = (f: string): boolean => flags.includes(f) || (f !== "K" && flags.includes("A"));
      const missing = NEEDED_FLAGS.filter((f) => !has(f));
      if (missing.length > 0) await conn.config("SET", "notify-keyspace-events", flags + missing.join(""));
    } catch (err) {
      if (this.configWarned) return;
      this.configWarned = true;
      this.options.logger?.warn(
        { err: String(err) },
        "could not enable Redis keyspace notifications (notify-keyspace-events Kgx) on a cluster master; expiry is noticed only when a server resubscribes",
      );
    }
  }

  /** One log line whenever the set of problems changes. */
  private report(): void {
    if (this.closed || !this.started) return;
    const problems = this.problems();
    const text = problems.join("; ");
    if (text === this.lastReport) return;
    this.lastReport = text;
    if (problems.length > 0) this.options.logger?.warn({ problems }, `redis cluster unavailable: ${text}`);
    else this.options.logger?.info({ masters: [...this.masters.keys()] }, "redis cluster available: every slot has a reachable master");
  }
}

/** Slot ranges not in `ranges`, as `a-b` strings. */
function gaps(ranges: [number, number][]): string[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: string[] = [];
  let next = 0;
  for (const [from, to] of sorted) {
    if (from > next) out.push(`${next}-${from - 1}`);
    next = Math.max(next, to + 1);
  }
  if (next < SLOTS) out.push(`${next}-${SLOTS - 1}`);
  return out;
}
