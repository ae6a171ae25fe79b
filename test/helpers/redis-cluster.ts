/**
 * A real local Redis Cluster for tests: `masters × (1 + replicas)` `redis-server --cluster-enabled yes`
 * on free 127.0.0.1 ports, each in its own temp dir, joined with
 * `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`; resolves once every slot is
 * served (`cluster_state:ok` on every node). A small `cluster-node-timeout` (default 1000 ms) makes a
 * failover take a second or two.
 *
 * `kill(port)` SIGKILLs one node; `restart(port)` starts it again with its old nodes.conf (it rejoins
 * as a replica of whoever took over its slots). `stop()` kills every node and removes every temp dir.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, Redis } from "ioredis";
import { freePort, killOnExit } from "./redis-server.js";

const exec = promisify(execFile);

export interface ClusterNode {
  port: number;
  dir: string;
  proc: ChildProcess | undefined;
}

export interface RedisClusterHandle {
  /** Every node, in creation order (the first `masters` were created as masters). */
  readonly nodes: readonly ClusterNode[];
  /** `127.0.0.1:p1,127.0.0.1:p2,...` (every node: the value of REDIS_CLUSTER_NODES). */
  readonly seeds: string;
  /** Port of the master currently serving `key`'s slot (asks the cluster). */
  masterOf(key: string): Promise<number>;
  /** Ports of the current masters that serve slots. */
  masters(): Promise<number[]>;
  /** Port of a replica of the master on `masterPort` (the first one the cluster lists). */
  replicaOf(masterPort: number): Promise<number>;
  /**
   * Moves `key`'s slot, with its keys, from its master to the master on `toPort` (resharding by hand:
   * SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE on every master).
   */
  moveSlotOf(key: string, toPort: number): Promise<void>;
  /** SIGKILLs the node on `port` and waits for its exit. */
  kill(port: number): Promise<void>;
  /** Starts the (killed) node on `port` again with its nodes.conf and waits until it answers PING. */
  restart(port: number): Promise<void>;
  /** Resolves once every live node reports `cluster_state:ok` and `key`'s slot has a master that answers. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** A plain ioredis connection to one node (closed by `stop()`). */
  client(port: number): Redis;
  /** An ioredis `Cluster` client on the cluster (closed by `stop()`). */
  clusterClient(): Cluster;
  /** The seeds as `{host, port}` (RedisStore's `clusterNodes`). */
  seedNodes(): { host: string; port: number }[];
  /** Kills every node, closes the clients, removes the temp dirs. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /** `cluster-node-timeout`, ms. Default 1000. */
  nodeTimeoutMs?: number;
}

/** Keys whose slots live on distinct masters: one key per master, built as `${prefix}-<n>`. */
export async function keysOnEveryMaster(cluster: RedisClusterHandle, prefix: string, keyPrefix = ""): Promise<string[]> {
  const masters = await cluster.masters();
  const byMaster = new Map<number, string>();
  for (let n = 0; byMaster.size < masters.length && n < 10_000; n++) {
    const id = `${prefix}-${n}`;
    const port = await cluster.masterOf(keyPrefix + id);
    if (!byMaster.has(port)) byMaster.set(port, id);
  }
  return [...byMaster.values()];
}

/** Starts the cluster; on failure everything started so far is stopped and the error rethrown. */
export async function startRedisCluster(opts: StartClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const nodeTimeout = opts.nodeTimeoutMs ?? 1000;
  const nodes: ClusterNode[] = [];
  const clients: (Redis | Cluster)[] = [];

  const args = (n: ClusterNode): string[] => [
    "--port", String(n.port), "--bind", "127.0.0.1", "--dir", n.dir, "--daemonize", "no",
    "--save", "", "--appendonly", "no",
    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", String(nodeTimeout),
    // a replica may always be promoted (a test's writes make it lag by a few ms at most)
    "--cluster-replica-validity-factor", "0",
    // the other masters keep serving while one shard has no master (as in docker-compose.cluster.yml)
    "--cluster-require-full-coverage", "no",
    // a replica's first sync starts at once, not after the default 5 s
    "--repl-diskless-sync-delay", "0",
    "--notify-keyspace-events", "",
  ];

  const launch = async (n: ClusterNode): Promise<void> => {
    const proc = spawn("redis-server", args(n), { stdio: ["ignore", "ignore", "pipe"] });
    killOnExit(proc);
    n.proc = proc;
    let stderr = "";
    let failure: Error | undefined;
    proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("error", (err: NodeJS.ErrnoException) => {
      failure = err.code === "ENOENT" ? new Error("redis-server is not on PATH; install the Debian package `redis-server`") : err;
    });
    proc.on("exit", (code) => (failure ??= new Error(`redis-server :${n.port} exited with code ${code}: ${stderr.trim()}`)));
    for (let i = 0; i < 200; i++) {
      if (failure) throw failure;
      if (await answers(n.port)) return;
      await delay(50);
    }
    throw new Error(`redis-server :${n.port} did not answer PING within 10 s`);
  };

  const kill = async (port: number): Promise<void> => {
    const n = nodes.find((x) => x.port === port);
    const p = n?.proc;
    if (!n || !p) return;
    n.proc = undefined;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGKILL");
    await exited;
  };

  const stop = async (): Promise<void> => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => kill(n.port)));
    await Promise.all(nodes.map((n) => rm(n.dir, { recursive: true, force: true })));
  };

  const cli = async (port: number, ...cmd: string[]): Promise<string> =>
    (await exec("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...cmd])).stdout;

  const live = (): ClusterNode[] => nodes.filter((n) => n.proc);

  /** `CLUSTER NODES` of a live node, parsed: master ports with slots, replicas with their master id. */
  const topology = async (): Promise<{ port: number; id: string; master: boolean; masterId: string; slots: boolean; failed: boolean }[]> => {
    for (const n of live()) {
      try {
        const out = await cli(n.port, "cluster", "nodes");
        return out
          .trim()
          .split("\n")
          .map((line) => {
            const f = line.split(" ");
            return {
              id: f[0]!,
              port: Number(f[1]!.split("@")[0]!.split(":")[1]),
              master: f[2]!.includes("master"),
              failed: f[2]!.includes("fail"),
              masterId: f[3]!,
              slots: f.length > 8,
            };
          });
      } catch {
        /* try the next node */
      }
    }
    throw new Error("no live cluster node answers CLUSTER NODES");
  };

  const handle: RedisClusterHandle = {
    nodes,
    get seeds() {
      return nodes.map((n) => `127.0.0.1:${n.port}`).join(",");
    },
    async masterOf(key) {
      const slot = Number((await cli(live()[0]!.port, "cluster", "keyslot", key)).trim());
      const c = handle.client(live()[0]!.port);
      const slots = (await c.cluster("SLOTS")) as unknown as [number, number, [string, number]][];
      c.disconnect();
      for (const [from, to, master] of slots) if (slot >= from && slot <= to) return master[1];
      throw new Error(`no master serves slot ${slot} of ${key}`);
    },
    async masters() {
      return (await topology()).filter((n) => n.master && n.slots && !n.failed).map((n) => n.port);
    },
    async replicaOf(masterPort) {
      const t = await topology();
      const master = t.find((n) => n.port === masterPort);
      const replica = t.find((n) => !n.master && n.masterId === master?.id && !n.failed);
      if (!replica) throw new Error(`no replica of :${masterPort}`);
      return replica.port;
    },
    async moveSlotOf(key, toPort) {
      const fromPort = await handle.masterOf(key);
      const slot = (await cli(fromPort, "cluster", "keyslot", key)).trim();
      const idOf = async (port: number): Promise<string> => (await cli(port, "cluster", "myid")).trim();
      const [fromId, toId] = await Promise.all([idOf(fromPort), idOf(toPort)]);
      await cli(toPort, "cluster", "setslot", slot, "importing", fromId);
      await cli(fromPort, "cluster", "setslot", slot, "migrating", toId);
      for (;;) {
        const keys = (await cli(fromPort, "cluster", "getkeysinslot", slot, "100")).split("\n").filter(Boolean);
        if (keys.length === 0) break;
        await cli(fromPort, "migrate", "127.0.0.1", String(toPort), "", "0", "5000", "keys", ...keys);
      }
      for (const port of await handle.masters()) await cli(port, "cluster", "setslot", slot, "node", toId);
    },
    kill,
    async restart(port) {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no node on :${port}`);
      await kill(port);
      await launch(n);
    },
    async waitHealthy(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const states = await Promise.all(live().map((n) => cli(n.port, "cluster", "info").catch(() => "")));
        if (states.every((s) => s.includes("cluster_state:ok"))) return;
        if (Date.now() > deadline) throw new Error(`cluster not healthy after ${timeoutMs} ms`);
        await delay(100);
      }
    },
    client(port) {
      const c = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    },
    clusterClient() {
      const c = new Cluster(handle.seedNodes(), { slotsRefreshInterval: 1000 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    },
    seedNodes() {
      return nodes.map((n) => ({ host: "127.0.0.1", port: n.port }));
    },
    stop,
  };

  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      nodes.push({ port: await freePort(), dir: await mkdtemp(join(tmpdir(), "redis-cluster-test-")), proc: undefined });
    }
    await Promise.all(nodes.map(launch));
    await exec("redis-cli", [
      "--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas", String(replicas), "--cluster-yes",
    ]);
    await handle.waitHealthy();
    // every replica attached and synced (master_link_status:up), so a failover right away has a replica to promote
    const deadline = Date.now() + 20_000;
    for (;;) {
      const t = await topology();
      const attached = t.filter((n) => !n.master && t.some((m) => m.id === n.masterId)).length;
      const synced = await Promise.all(
        t.filter((n) => !n.master).map((n) => cli(n.port, "info", "replication").then((s) => s.includes("master_link_status:up"), () => false)),
      );
      if (attached === masters * replicas && synced.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error("replicas did not attach within 20 s");
      await delay(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return handle;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when 127.0.0.1:port answers PING. */
async function answers(port: number): Promise<boolean> {
  try {
    const { stdout } = await exec("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "ping"], { timeout: 1000 });
    return stdout.trim() === "PONG";
  } catch {
    return false;
  }
}
