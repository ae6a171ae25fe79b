/**
 * CodeStore on Redis (ioredis). Each codespace is ONE hash `${keyPrefix}${codespace}` holding
 * `code`, `epoch`, `version` and the bounded history `h:<n>` (see redis-scripts.ts), so one TTL and
 * one DEL cover everything and the codespace stays in one Redis Cluster slot.
 *
 * Failure model: every Redis failure surfaces as StoreUnavailableError, quickly (no offline queue,
 * per-command timeout); both connections reconnect forever with capped backoff and recover by
 * themselves. Expiry/deletion arrive through keyspace notifications (`Kgx`, set at start and after
 * every reconnect).
 *
 * On a Redis Cluster (`clusterNodes`): both connections are ioredis `Cluster`s; the commit script
 * SPUBLISHes the commit feed on a channel in the key's slot (feed-channel.ts) and the feed uses
 * sharded subscriptions (`shardedSubscribers`), which ioredis moves to the new master after a
 * failover; keyspace notifications come from every master (redis-cluster-masters.ts). With
 * `waitReplicas` > 0 a commit is reported only once `WAIT` confirmed it on that many replicas.
 */
import { randomUUID } from "node:crypto";
import { Cluster, Redis, ReplyError, type ChainableCommander, type RedisOptions } from "ioredis";
import { StoreUnavailableError } from "../errors.js";
import type { WireUpdate } from "../protocol/events.js";
import {
  codeOf,
  type CodeStore,
  type CommitListener,
  type Commit,
  type CommitRequest,
  type ClaimOptions,
  type ClaimResult,
  type CommitResult,
  type ExpiredListener,
  type ConfirmResult,
  type HistoryResult,
  type RestartResult,
  type Snapshot,
  type Utf8Patch,
} from "./code-store.js";
import { SAVE_INDEX } from "./reserved-keys.js";
import { COMMIT_SCRIPT, CONFIRM_SCRIPT, HISTORY_SCRIPT, OPEN_SCRIPT, RESTART_SCRIPT } from "./redis-scripts.js";
import { CLAIM_SCRIPT, DEFER_SCRIPT, DUE_SCRIPT, RELEASE_SCRIPT, SETTLE_SCRIPT } from "./save-scripts.js";
import { clusterOptions, connectUntilReady, quitConnection, retryStrategy } from "../redis-connection.js";
import { feedChannel } from "./feed-channel.js";
import { ClusterMasters } from "./redis-cluster-masters.js";

export interface RedisStoreOptions {
  /** redis://[user:pass@]host:port[/db] (one Redis); ignored with `clusterNodes`. */
  url?: string;
  /** Seed nodes of a Redis Cluster (instead of `url`). */
  clusterNodes?: readonly { host: string; port: number }[];
  /**
   * Replicas that must confirm each commit (`WAIT`, at most `WAIT_TIMEOUT_MS`) before it is reported
   * as stored; otherwise StoreUnavailableError (the commit may still be there: a resend is deduplicated).
   * Default 0 (no WAIT).
   */
  waitReplicas?: number;
  /** Prepended to the codespace id to form its key (the site API uses the bare uuid: ""). */
  keyPrefix: string;
  /** Number of most recent updates kept per codespace. */
  historyLength: number;
  logger?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** Per-command timeout, ms (default 500). */
  commandTimeoutMs?: number;
  /** Called on every error event of either Redis connection (metrics). */
  onConnectionError?: (err: Error) => void;
}

type Reply = (string | number)[];

/** The scripts registered by `defineCommand` (on the connection and on its pipelines). */
interface Scripts<R> {
  codespaceOpen(key: string, epoch: string, ttl: number, initialCode?: string): R;
  codespaceCommit(key: string, ...args: (string | number)[]): R;
  codespaceHistory(key: string, epoch: string, version: number): R;
  codespaceClaimSave(key: string, ...args: (string | number)[]): R;
  codespaceSettleSave(key: string, ...args: (string | number)[]): R;
  codespaceDeferSave(key: string, owner: string, delayMs: number): R;
  codespaceReleaseSave(key: string, owner: string): R;
  codespaceRestart(key: string, epoch: string, id: string, channel: string, publish: string): R;
  codespaceConfirm(key: string, epoch: string, version: number): R;
  codespaceDueSaves(index: string, limit: number): R;
}
/** The command connection (one Redis or a Cluster) with the scripts. */
type ScriptedRedis = (Redis | Cluster) & Scripts<Promise<Reply>>;

/** Longest a commit waits for `waitReplicas` replicas (Redis `WAIT` timeout), ms. */
export const WAIT_TIMEOUT_MS = 300;

/** At most one warn line per this many ms for each kind of Redis error (RedisStore.warnLimited). */
const REDIS_WARN_EVERY_MS = 10_000;

/** Due-save index score meaning "due now" whatever the clocks (DUE_SCRIPT). */
const DUE_NOW = 0;

/**
 * Name of the due-save index after KEY_PREFIX: a sorted set of codespace ids scored by the time
 * (ms) their save is due. Only a hint for finding work: the truth is in each codespace's hash.
 */


/** Keyspace events the store needs: K keyspace channel, g generic (del), x expired. */
const NEEDED_FLAGS = ["K", "g", "x"];

/** Escapes Redis glob metacharacters (`* ? [ ] \`) in a PSUBSCRIBE pattern. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

export class RedisStore implements CodeStore {
  private readonly cmd: ScriptedRedis;
  private readonly sub: Redis | Cluster;
  /** Cluster only: keyspace subscriptions on every master, and the cluster's health. */
  private masters: ClusterMasters | undefined;
  private readonly clusterNodes: RedisStoreOptions["clusterNodes"];
  private readonly waitReplicas: number;
  /** Channel -> codespace of the watched commit feeds. */
  private readonly channels = new Map<string, string>();
  /** Cluster only: watched codespaces known to exist (checked after a master's keyspace resubscription). */
  private readonly opened = new Set<string>();
  private readonly listeners: ExpiredListener[] = [];
  private readonly watchers = new Map<string, CommitListener>();
  private readonly keyPrefix: string;
  private readonly historyLength: number;
  private readonly logger?: RedisStoreOptions["logger"];
  /** How the scripts publish on the commit feed: sharded pub/sub on a cluster (feed-channel.ts). */
  private get publishCommand(): "SPUBLISH" | "PUBLISH" {
    return this.clusterNodes ? "SPUBLISH" : "PUBLISH";
  }
  /** Per watched codespace: called when its feed subscription was re-established (CodeStore.watch). */
  private readonly resumers = new Map<string, () => void>();
  /** warnLimited's last line per kind: when, and how many of that kind since. */
  private readonly warned = new Map<string, { at: number; since: number }>();
  private readonly channelPrefix: string;
  private readonly saveIndex: string;
  private configWarned = false;
  private closed = false;
  /** Rejects when `close()` is called, so a pending `start()` does not wait forever. */
  private readonly closedSignal: Promise<never>;
  private signalClosed!: (err: Error) => void;

  /** Creates both connections (not yet connected); call `start()` or use `RedisStore.connect`. */
  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix;
    this.historyLength = options.historyLength;
    this.logger = options.logger;
    this.closedSignal = new Promise<never>((_, reject) => (this.signalClosed = reject));
    this.closedSignal.catch(() => {});
    this.clusterNodes = options.clusterNodes;
    this.waitReplicas = options.waitReplicas ?? 0;
    const common = { lazyConnect: true, retryStrategy, connectTimeout: 2000 };
    const cmdOptions: RedisOptions = {
      ...common,
      enableOfflineQueue: false,
      // WAIT is bounded by its own timeout; leave it room
      commandTimeout: (options.commandTimeoutMs ?? 500) + (this.waitReplicas > 0 ? WAIT_TIMEOUT_MS : 0),
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    };
    const subOptions: RedisOptions = { ...common, maxRetriesPerRequest: null, autoResubscribe: true };
    if (this.clusterNodes) {
      const seeds = this.clusterNodes.map((n) => ({ host: n.host, port: n.port }));
      this.cmd = new Cluster(seeds, clusterOptions(cmdOptions, { enableOfflineQueue: false, maxRedirections: 4 })) as ScriptedRedis;
      this.sub = new Cluster(seeds, clusterOptions(subOptions, { shardedSubscribers: true }));
    } else {
      this.cmd = new Redis(options.url ?? "", cmdOptions) as ScriptedRedis;
      this.sub = new Redis(options.url ?? "", subOptions);
    }
    // Errors are reported through command rejections and isReady(); avoid unhandled 'error' events.
    const onError = options.onConnectionError ?? (() => {});
    this.cmd.on("error", onError);
    this.sub.on("error", onError);
    this.cmd.defineCommand("codespaceOpen", { numberOfKeys: 1, lua: OPEN_SCRIPT });
    this.cmd.defineCommand("codespaceCommit", { numberOfKeys: 1, lua: COMMIT_SCRIPT });
    this.cmd.defineCommand("codespaceHistory", { numberOfKeys: 1, lua: HISTORY_SCRIPT });
    this.cmd.defineCommand("codespaceClaimSave", { numberOfKeys: 1, lua: CLAIM_SCRIPT });
    this.cmd.defineCommand("codespaceSettleSave", { numberOfKeys: 1, lua: SETTLE_SCRIPT });
    this.cmd.defineCommand("codespaceDeferSave", { numberOfKeys: 1, lua: DEFER_SCRIPT });
    this.cmd.defineCommand("codespaceReleaseSave", { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    this.cmd.defineCommand("codespaceRestart", { numberOfKeys: 1, lua: RESTART_SCRIPT });
    this.cmd.defineCommand("codespaceConfirm", { numberOfKeys: 1, lua: CONFIRM_SCRIPT });
    this.cmd.defineCommand("codespaceDueSaves", { numberOfKeys: 1, lua: DUE_SCRIPT });
    this.saveIndex = this.keyPrefix + SAVE_INDEX;
    const db = this.cmd instanceof Redis ? (this.cmd.options.db ?? 0) : 0;
    this.channelPrefix = `__keyspace@${db}__:`;
    const onFeed = (channel: string, message: string): void => {
      const codespace = this.channels.get(channel);
      const listener = codespace === undefined ? undefined : this.watchers.get(codespace);
      if (!listener) return;
      try {
        listener(JSON.parse(message) as Commit);
      } catch (err) {
        this.logger?.warn({ err: (err as Error).message, channel }, "commit feed listener failed");
      }
    };
    this.sub.on(this.clusterNodes ? "smessage" : "message", onFeed);
    // a reconnection of the subscriber (ioredis resubscribes): what was published meanwhile is lost
    let subReady = false;
    this.sub.on("ready", () => {
      if (subReady) this.resumeAll();
      subReady = true;
    });
    this.sub.on("pmessage", (_pattern: string, channel: string, event: string) => this.onKeyspace(channel, event));
  }

  /**
   * A keyspace event on one Redis or any cluster master. On a cluster a `del` is also what the old
   * master emits when resharding MIGRATEs the key to another master: it counts only if the key is
   * really gone.
   */
  private onKeyspace(channel: string, event: string): void {
    if (event !== "expired" && event !== "del") return;
    if (channel === this.channelPrefix + this.saveIndex) return;
    const codespace = channel.slice(this.channelPrefix.length + this.keyPrefix.length);
    if (this.masters && event === "del") {
      void this.cmd.exists(this.key(codespace)).then(
        (n) => n === 0 && this.gone(codespace),
        () => this.gone(codespace),
      );
      return;
    }
    this.gone(codespace);
  }

  /** Tells every watcher that its feed may have missed messages (CodeStore.watch's `resumed`). */
  private resumeAll(): void {
    for (const resumed of this.resumers.values()) resumed();
  }

  private gone(codespace: string): void {
    this.opened.delete(codespace);
    this.fire(codespace);
  }

  /** Creates a store and waits until it is ready (see `start`). */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(options);
    await store.start();
    return store;
  }

  /**
   * Connects both connections, waiting (through reconnects, without a deadline) until both are
   * ready; enables keyspace notifications and subscribes. Rejects if `close()` is called first, or
   * when REDIS_URL names a database this Redis does not have (a setting to fix, never ready).
   */
  async start(): Promise<void> {
    await Promise.race([Promise.all([connectUntilReady(this.cmd), connectUntilReady(this.sub)]), this.closedSignal]);
    const pattern = `${this.channelPrefix}${escapeGlob(this.keyPrefix)}*`;
    if (this.cmd instanceof Cluster) {
      this.masters = new ClusterMasters({
        cluster: this.cmd,
        redisOptions: this.cmd.options.redisOptions ?? {},
        pattern,
        onEvent: (channel, event) => this.onKeyspace(channel, event),
        // a master (re)subscribed: after a failover, feeds of its slots may have missed commits
        onSubscribed: () => {
          void this.sweep();
          this.resumeAll();
        },
        logger: this.logger?.info ? (this.logger as ConstructorParameters<typeof ClusterMasters>[0]["logger"]) : undefined,
      });
      await Promise.race([this.masters.start(), this.closedSignal]);
      return;
    }
    // ioredis goes ready even when the SELECT of REDIS_URL's database fails, and then writes to
    // database 0: a database this Redis does not have must stop the store from being used at all
    const db = (this.cmd as Redis).options.db ?? 0;
    if (db > 0) {
      await (this.cmd as Redis).select(db).catch((err: Error) => {
        throw new Error(`REDIS_URL selects database ${db}, which this Redis refuses (${err.message}): fix the /<db> of REDIS_URL`);
      });
    }
    await this.ensureNotifications();
    this.cmd.on("ready", () => void this.ensureNotifications());
    await (this.sub as Redis).psubscribe(pattern);
  }

  /**
   * Cluster only: after a master's keyspace subscription was (re)established, the codespaces held
   * here whose key is gone expired while nobody listened: report them now. Keys unreadable right
   * now are checked again after the next resubscription.
   */
  private async sweep(): Promise<void> {
    await Promise.all(
      [...this.opened].map(async (codespace) => {
        const exists = await this.cmd.exists(this.key(codespace)).catch(() => 1);
        if (exists === 0 && this.opened.has(codespace)) this.gone(codespace);
      }),
    );
  }

  /** Cluster only: what keeps the cluster from being fully served (empty: nothing; one Redis: always empty). */
  problems(): string[] {
    return this.masters?.problems() ?? [];
  }

  /** See CodeStore.open. @throws StoreUnavailableError */
  async open(codespace: string, ttlSeconds: number, initialCode?: string): Promise<Snapshot> {
    const r = await this.call(() =>
      initialCode === undefined
        ? this.cmd.codespaceOpen(this.key(codespace), randomUUID(), ttlSeconds)
        : this.cmd.codespaceOpen(this.key(codespace), randomUUID(), ttlSeconds, initialCode),
    );
    if (this.masters && this.watchers.has(codespace)) this.opened.add(codespace);
    return { code: String(r[0]), version: Number(r[1]), epoch: String(r[2]) };
  }

  /** See CodeStore.watch: SUBSCRIBE on the subscriber connection (resubscribed after reconnects). */
  async watch(codespace: string, listener: CommitListener, resumed?: () => void): Promise<void> {
    if (this.closed || this.sub.status !== "ready") {
      throw new StoreUnavailableError(`the code store is unavailable (redis ${this.sub.status})`);
    }
    this.watchers.set(codespace, listener);
    if (resumed) this.resumers.set(codespace, resumed);
    const channel = this.feedChannel(codespace);
    this.channels.set(channel, codespace);
    try {
      if (this.sub instanceof Cluster) await this.sub.ssubscribe(channel);
      else await this.sub.subscribe(channel);
    } catch (err) {
      this.watchers.delete(codespace);
      this.channels.delete(channel);
      throw new StoreUnavailableError(`could not subscribe to the commit feed: ${(err as Error).message}`);
    }
  }

  /** See CodeStore.unwatch. */
  async unwatch(codespace: string): Promise<void> {
    this.resumers.delete(codespace);
    this.watchers.delete(codespace);
    this.opened.delete(codespace);
    const channel = this.feedChannel(codespace);
    this.channels.delete(channel);
    if (this.sub.status !== "ready") return;
    if (this.sub instanceof Cluster) await this.sub.sunsubscribe(channel).catch(() => {});
    else await this.sub.unsubscribe(channel).catch(() => {});
  }

  /** Channel of a codespace's commit feed (in the key's cluster slot: feed-channel.ts). */
  private feedChannel(codespace: string): string {
    return feedChannel(this.key(codespace));
  }

  /** See CodeStore.load: one HMGET (atomic), never creates. @throws StoreUnavailableError */
  async load(codespace: string): Promise<Snapshot | null> {
    const [code, version, epoch] = await this.call(() => this.cmd.hmget(this.key(codespace), "code", "version", "epoch"));
    if (epoch === null || version === null) return null;
    return { code: code ?? "", version: Number(version), epoch };
  }

  /** See CodeStore.exists (EXISTS). @throws StoreUnavailableError */
  async exists(codespace: string): Promise<boolean> {
    return (await this.call(() => this.cmd.exists(this.key(codespace)))) === 1;
  }

  /** See CodeStore.commit (one Lua script: epoch check, CAS, HSET/HDEL history, EXPIRE). @throws StoreUnavailableError */
  async commit(codespace: string, req: CommitRequest): Promise<CommitResult> {
    const updates = req.updates.map((u) => JSON.stringify({ clientID: u.clientID, changes: u.changes }));
    // The commit feed's message, a `Commit` as JSON, built from the updates' JSON (no second
    // serialization of the changes): `{..., "updates": [{"clientID", "changes", "sender"}, ...]}`.
    const feedUpdates = updates.map((u, i) => `${u.slice(0, -1)},"sender":${JSON.stringify(req.senders?.[i] ?? "")}}`);
    const feed = `{"epoch":${JSON.stringify(req.epoch)},"baseVersion":${req.baseVersion},"updates":[${feedUpdates.join(",")}]}`;
    const run = (mode: "set" | "apply") =>
      this.call(() =>
        this.withWait(
          "codespaceCommit",
          "the commit",
          this.key(codespace),
          req.epoch,
          req.baseVersion,
          mode,
          mode === "apply" ? encodePatch(req.patch!()) : codeOf(req),
          req.ttlSeconds,
          this.historyLength,
          updates.length,
          ...updates,
          this.feedChannel(codespace),
          feed,
          this.publishCommand,
          ...(req.save ? [req.save.debounceMs, req.save.maxWaitMs, req.save.retentionSeconds] : []),
        ),
      );
    if (req.save) {
      // The index entry is written before the commit (same connection: Redis runs it first), so a
      // process dying between the commit and the second write below never hides an unsaved commit.
      // Not awaited on one Redis: no extra round trip on the accept path. On a Redis Cluster the index
      // and the key live on different nodes, where that ordering does not hold: awaited there.
      const indexed = this.cmd.status === "ready" ? this.cmd.zadd(this.saveIndex, "NX", Date.now() + req.save.maxWaitMs, codespace).catch(() => 0) : undefined;
      if (this.masters) await indexed;
    }
    let r = await run(req.patch ? "apply" : "set");
    if (r[0] === "resync") {
      this.logger?.warn({ codespace }, "stored code did not match the patch; writing the whole text");
      r = await run("set");
    }
    switch (r[0]) {
      case "ok":
        // the due time; not awaited: no extra round trip before the ack
        if (r[2] !== undefined) void this.index(codespace, Number(r[2])).catch(() => {});
        return { status: "ok", version: Number(r[1]) };
      case "conflict":
        return { status: "conflict", version: Number(r[1]), updates: parseUpdates(r.slice(2)) };
      case "snapshot":
        return { status: "conflict", version: Number(r[1]), snapshot: parseSnapshot(r) };
      default:
        return epochResult(r);
    }
  }

  /**
   * See CodeStore.history. A `version` ahead of the stored one yields `updates: []` with the stored
   * version. @throws StoreUnavailableError
   */
  async history(codespace: string, epoch: string, version: number): Promise<HistoryResult> {
    const r = await this.call(() => this.cmd.codespaceHistory(this.key(codespace), epoch, version));
    switch (r[0]) {
      case "updates":
        return { status: "updates", version: Number(r[1]), updates: parseUpdates(r.slice(2)) };
      case "snapshot":
        return { status: "snapshot", snapshot: parseSnapshot(r) };
      default:
        return epochResult(r);
    }
  }

  /** See CodeStore.restart (one Lua script: epoch check, HSET epoch, PUBLISH on the commit feed). @throws StoreUnavailableError */
  async restart(codespace: string, epoch: string, id: string): Promise<RestartResult> {
    const r = await this.call(() => this.cmd.codespaceRestart(this.key(codespace), epoch, id, this.feedChannel(codespace), this.publishCommand));
    return r[0] === "restarted"
      ? { status: "restarted", version: Number(r[1]), epoch: String(r[2]) }
      : epochResult(r);
  }

  /**
   * See CodeStore.confirm (a Lua script that checks the version and rewrites it unchanged; with
   * `waitReplicas`, WAIT pipelined after it). @throws StoreUnavailableError
   */
  async confirm(codespace: string, epoch: string, version: number): Promise<ConfirmResult> {
    const r = await this.call(() => this.withWait("codespaceConfirm", "the acknowledgement", this.key(codespace), epoch, version));
    switch (r[0]) {
      case "ok":
        return { status: "ok" };
      case "behind":
        return { status: "behind", version: Number(r[1]) };
      default:
        return epochResult(r);
    }
  }

  /**
   * Runs one of the scripts that write to a codespace; with `waitReplicas`, pipelines `WAIT` right
   * after it on the same connection (on a cluster: the pipeline goes to the key's master), which is
   * what WAIT counts. @throws StoreUnavailableError when an "ok" was not confirmed by enough replicas.
   */
  private async withWait(script: "codespaceCommit" | "codespaceConfirm", what: string, key: string, ...args: (string | number)[]): Promise<Reply> {
    if (this.waitReplicas === 0) return (this.cmd[script] as (key: string, ...a: (string | number)[]) => Promise<Reply>)(key, ...args);
    const pipeline = this.cmd.pipeline() as ChainableCommander & Scripts<unknown>;
    (pipeline[script] as (key: string, ...a: (string | number)[]) => unknown)(key, ...args);
    pipeline.wait(this.waitReplicas, WAIT_TIMEOUT_MS);
    const results = (await pipeline.exec()) ?? [];
    const [commitErr, reply] = results[0] ?? [new Error("no reply")];
    if (commitErr) throw commitErr;
    const [, acked] = results[1] ?? [];
    const r = reply as Reply;
    if (r[0] === "ok" && !(Number(acked) >= this.waitReplicas)) {
      throw new StoreUnavailableError(
        `${what} was confirmed by ${Number(acked) || 0} of ${this.waitReplicas} replicas within ${WAIT_TIMEOUT_MS} ms; resend (a resend is deduplicated)`,
      );
    }
    return r;
  }

  /** See SaveState.dueSaves: members of the index scored at or before Redis's clock (DUE_SCRIPT). */
  async dueSaves(limit: number): Promise<string[]> {
    return (await this.call(() => this.cmd.codespaceDueSaves(this.saveIndex, limit))).map(String);
  }

  /** See SaveState.claimSave (one Lua script on the codespace hash). */
  async claimSave(codespace: string, o: ClaimOptions): Promise<ClaimResult> {
    const r = await this.call(() =>
      this.cmd.codespaceClaimSave(this.key(codespace), o.owner, o.leaseMs, o.debounceMs, o.maxWaitMs, o.force ? "1" : "0"),
    );
    switch (r[0]) {
      case "gone":
        await this.unindex(codespace);
        return { status: "gone" };
      case "clean":
        await this.unindex(codespace);
        return { status: "clean" };
      case "busy":
        await this.index(codespace, Number(r[1]));
        return { status: "busy", until: Number(r[1]) };
      default:
        return {
          status: "claimed",
          epoch: String(r[1]),
          version: Number(r[2]),
          code: String(r[3]),
          dirtySince: Number(r[4]),
          now: Number(r[5]),
          attempts: Number(r[6]),
        };
    }
  }

  /** See SaveState.settleSave. */
  async settleSave(
    codespace: string,
    owner: string,
    x: { epoch: string; version: number; claimedAt: number; debounceMs: number; maxWaitMs: number },
  ): Promise<"clean" | "dirty" | "lost"> {
    const r = await this.call(() =>
      this.cmd.codespaceSettleSave(this.key(codespace), owner, x.epoch, x.version, x.claimedAt, x.debounceMs, x.maxWaitMs),
    );
    if (r[0] === "dirty") {
      await this.index(codespace, Number(r[1]));
      return "dirty";
    }
    await this.unindex(codespace);
    return r[0] === "clean" ? "clean" : "lost";
  }

  /** See SaveState.deferSave. */
  async deferSave(codespace: string, owner: string, delayMs: number): Promise<void> {
    const r = await this.call(() => this.cmd.codespaceDeferSave(this.key(codespace), owner, delayMs));
    if (r[0] === "deferred") await this.index(codespace, Number(r[1]));
  }

  /** See SaveState.releaseSave. */
  async releaseSave(codespace: string, owner: string): Promise<void> {
    await this.call(() => this.cmd.codespaceReleaseSave(this.key(codespace), owner));
    await this.index(codespace, DUE_NOW);
  }

  /** See SaveState.unsavedCount: the size of the due index. */
  async unsavedCount(): Promise<number> {
    return this.call(() => this.cmd.zcard(this.saveIndex));
  }

  /**
   * See SaveState.unsaved: HEXISTS `dirty_since` on each hash (one command each: on a cluster they
   * live in different slots), then one `ZADD NX` (due now) of the unsaved ones, which leaves the
   * entries that exist as they are; the first claim of a re-listed one sets its real due time.
   */
  async unsaved(codespaces: readonly string[]): Promise<string[]> {
    if (codespaces.length === 0) return [];
    const flags = await this.call(() => Promise.all(codespaces.map((c) => this.cmd.hexists(this.key(c), "dirty_since"))));
    const out = codespaces.filter((_, i) => flags[i] === 1);
    if (out.length > 0) {
      await this.call(() => this.cmd.zadd(this.saveIndex, "NX", ...out.flatMap((c) => [DUE_NOW, c])));
    }
    return out;
  }

  /** Sets a codespace's due time in the index. */
  private async index(codespace: string, due: number): Promise<void> {
    await this.call(() => this.cmd.zadd(this.saveIndex, due, codespace));
  }

  /**
   * Removes a clean codespace from the index, then checks the hash again: a commit that landed
   * meanwhile (its own index write may have come before the removal) is put back.
   */
  private async unindex(codespace: string): Promise<void> {
    await this.call(() => this.cmd.zrem(this.saveIndex, codespace));
    const dirty = await this.call(() => this.cmd.hexists(this.key(codespace), "dirty_since"));
    if (dirty) await this.index(codespace, DUE_NOW);
  }

  onExpired(listener: ExpiredListener): void {
    this.listeners.push(listener);
  }

  /**
   * True while both the command and the subscriber connection are ready (on a cluster: and some
   * master answers). A cluster with a master down is still "ready" here: the codespaces on the other
   * masters work; `problems()` says what is down (and makes `/readyz` 503).
   */
  isReady(): boolean {
    return !this.closed && this.cmd.status === "ready" && this.sub.status === "ready" && (this.masters?.reachable() ?? true);
  }

  /** Quits both connections (disconnects if QUIT fails). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalClosed(new StoreUnavailableError("the store was closed"));
    await Promise.all([quitConnection(this.cmd), quitConnection(this.sub), this.masters?.close()]);
  }

  private key(codespace: string): string {
    return this.keyPrefix + codespace;
  }

  /** Runs a command, failing fast when not ready and mapping every failure to StoreUnavailableError. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed || this.cmd.status !== "ready") {
      throw new StoreUnavailableError(`the code store is unavailable (redis ${this.cmd.status}); nothing was applied`);
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        // already says what happened (WAIT)
        this.warnLimited("WAIT", { err: err.message }, "a write was not confirmed by enough replicas (REDIS_WAIT_REPLICAS); the request was answered store_unavailable");
        throw err;
      }
      if (err instanceof ReplyError) {
        // Redis answered with an error (WRONGTYPE: a key of another type under a codespace's name;
        // MOVED: REDIS_URL names one node of a Redis Cluster; a script error): the operator must see it
        const command = (err as { command?: { name?: string; args?: unknown[] } }).command;
        const message = String((err as Error).message);
        // a script's key follows its sha (or body) and the key count
        const key = command?.args?.[/^eval/i.test(command.name ?? "") ? 2 : 0];
        this.warnLimited(message.split(" ")[0] ?? "ERR", { err: message, command: command?.name, key: key === undefined ? undefined : String(key) }, "Redis refused a command; the request was answered store_unavailable");
      }
      const e = new StoreUnavailableError();
      e.cause = err;
      throw e;
    }
  }

  /**
   * A warn line, at most one per REDIS_WARN_EVERY_MS for each `kind` (the Redis error's first word,
   * or WAIT), with the number of the same kind since the previous line: a failing key or node is
   * one line every 10 s, not one per request.
   */
  private warnLimited(kind: string, fields: object, msg: string): void {
    if (!this.logger) return;
    const now = Date.now();
    const seen = this.warned.get(kind);
    if (seen && now - seen.at < REDIS_WARN_EVERY_MS) {
      seen.since++;
      return;
    }
    this.warned.set(kind, { at: now, since: 0 });
    this.logger.warn({ ...fields, sameSinceLastLine: seen?.since ?? 0 }, msg);
  }

  /** Makes sure notify-keyspace-events contains K, g and x; warns once if CONFIG is refused. */
  private async ensureNotifications(): Promise<void> {
    try {
      const reply = (await this.cmd.config("GET", "notify-keyspace-events")) as string[];
      const flags = reply[1] ?? "";
      const has = (f: string): boolean => flags.includes(f) || (f !== "K" && flags.includes("A"));
      const missing = NEEDED_FLAGS.filter((f) => !has(f));
      if (missing.length > 0) await this.cmd.config("SET", "notify-keyspace-events", flags + missing.join(""));
    } catch (err) {
      if (this.configWarned || this.closed) return;
      this.configWarned = true;
      this.logger?.warn(
        { err: String(err) },
        "could not enable Redis keyspace notifications (notify-keyspace-events Kgx); expiry will not be detected",
      );
    }
  }

  private fire(codespace: string): void {
    for (const listener of this.listeners) {
      try {
        listener(codespace);
      } catch {
        // A failing listener must not stop the others.
      }
    }
  }
}

/** The commit script's "apply" argument: `<bytes> <from> <to> <insertBytes> ...\n<inserts>` (redis-scripts.ts). */
function encodePatch(patch: Utf8Patch): string {
  let header = String(patch.bytes);
  let inserts = "";
  for (const c of patch.changes) {
    header += ` ${c.from} ${c.to} ${c.insertBytes}`;
    inserts += c.insert;
  }
  return header + "\n" + inserts;
}

function parseUpdates(items: (string | number)[]): WireUpdate[] {
  return items.map((s) => JSON.parse(String(s)) as WireUpdate);
}

/** `{"snapshot", version, epoch, code}` */
function parseSnapshot(r: Reply): Snapshot {
  return { version: Number(r[1]), epoch: String(r[2]), code: String(r[3]) };
}

/** `{"epoch"}` or `{"epoch", storedEpoch}` */
function epochResult(r: Reply): { status: "epoch"; epoch: string | null } {
  return { status: "epoch", epoch: r.length > 1 ? String(r[1]) : null };
}
