/**
 * The Redis Cluster benchmark (part of `npm run bench`, after bench/run.ts): the same fan-out load
 * on (b) this server, 2 processes on one Redis, and (g) this server, 2 processes on a local 3-master
 * 3-replica Redis Cluster (test/helpers/redis-cluster.ts); reports deliveries/s, server CPU per 1,000
 * deliveries, Redis CPU (summed over the masters; replicas apart) and delivery latency.
 *
 * Writes bench/results/cluster.json and the "Redis Cluster" section of docs/benchmarks.md (between
 * `<!-- cluster:begin -->` and `<!-- cluster:end -->`, appended when absent; bench/run.ts owns the
 * rest of the file). Options: --smoke (seconds; writes only bench/results/cluster-smoke.json),
 * --render (measure nothing: rewrite the section from bench/results/cluster.json).
 */
import { fork } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRedis } from "../test/helpers/redis-server.js";
import { startRedisCluster } from "../test/helpers/redis-cluster.js";
import type { ChildStats } from "./lib/child.js";
import { withClusterSection } from "./lib/cluster-section.js";
import type { FanoutJob, FanoutResult, LoadMessage, OrchestratorMessage } from "./lib/jobs.js";
import { procCpuSec, startChild, type ServerChild } from "./lib/servers.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
const SERVER = join(DIST_BENCH, "targets", "codespace-server.js");

/** Rooms of 10 as in bench/run.ts, at 800 edits/s offered (200 sockets): a load the 2-core machine carries with six redis-servers beside the servers. */
const FULL = { roomSize: 10, rooms: 20, writersPerRoom: 2, ratePerWriter: 20, warmupMs: 2000, durationMs: 10_000, drainMs: 5000 };
const SMOKE = { roomSize: 10, rooms: 3, writersPerRoom: 1, ratePerWriter: 20, warmupMs: 300, durationMs: 1000, drainMs: 3000 };

interface Row {
  target: string;
  result: FanoutResult;
  serverCpuSec: number;
  cpuSecPer1000: number;
  /** CPU of the Redis masters (one Redis: that one), seconds, during the measured window. */
  redisMastersCpuSec: number;
  /** CPU of the replicas, seconds (0 for one Redis). */
  redisReplicasCpuSec: number;
}

interface ClusterBenchResults {
  date: string;
  mode: "full" | "smoke";
  load: typeof FULL;
  /** 1-minute load average at the start and the end (other work on the machine shows here). */
  loadAvg: { start: number; end: number };
  rows: Row[];
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const cpuOf = (s: ChildStats): number => (s.cpuUserUs + s.cpuSystemUs) / 1e6;
const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;
const log = (msg: string): void => void process.stderr.write(`[bench cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** Forks the load generator with `job`; `onSample` answers its two sample requests (window start, end). */
function runLoad(job: FanoutJob, onSample: () => Promise<void>): Promise<FanoutResult> {
  return new Promise((resolve, reject) => {
    const child = fork(join(DIST_BENCH, "load", "loadgen.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
    let done = false;
    child.on("message", (m: LoadMessage) => {
      if (m.type === "rpc") void onSample().then(() => child.send({ type: "rpc-result", id: m.id } satisfies OrchestratorMessage));
      else if (m.type === "result") {
        done = true;
        resolve(m.result as FanoutResult);
      } else {
        done = true;
        reject(new Error(`load generator failed: ${m.message}`));
      }
    });
    child.once("exit", (code) => !done && reject(new Error(`load generator exited with code ${code} before a result`)));
    child.send({ type: "job", job } satisfies OrchestratorMessage);
  });
}

/** Two server processes on `env`, the load, CPU sampled at the window's start and end. */
async function measure(target: string, env: Record<string, string>, masters: number[], replicas: number[], load: typeof FULL): Promise<Row> {
  const servers: ServerChild[] = [];
  try {
    for (let i = 0; i < 2; i++) servers.push(await startChild(SERVER, env));
    const samples: { server: number; masters: number; replicas: number }[] = [];
    const result = await runLoad(
      { kind: "fanout", proto: "sio", urls: servers.map((s) => s.url), ...load, tokenPrefix: `tmp-benchcluster${process.pid}-${target.slice(1, 2)}-` },
      async () => {
        const stats = await Promise.all(servers.map((s) => s.stats()));
        samples.push({ server: sum(stats.map(cpuOf)), masters: sum(masters.map(procCpuSec)), replicas: sum(replicas.map(procCpuSec)) });
      },
    );
    const [s0, s1] = samples as [(typeof samples)[0], (typeof samples)[0]];
    const serverCpuSec = s1.server - s0.server;
    const row: Row = {
      target,
      result,
      serverCpuSec: round(serverCpuSec, 3),
      cpuSecPer1000: result.deliveries > 0 ? round(serverCpuSec / (result.deliveries / 1000), 5) : NaN,
      redisMastersCpuSec: round(s1.masters - s0.masters, 2),
      redisReplicasCpuSec: round(s1.replicas - s0.replicas, 2),
    };
    if (result.losses > 0) for (const s of servers) log(`${target}: server ${s.pid} output (tail):\n${s.output().slice(-3000)}`);
    log(`${target}: ${result.deliveriesPerSec} deliveries/s, cpu ${row.cpuSecPer1000} s/1000, p99 ${result.latencyMs.p99} ms, lost ${result.losses}, redis masters ${row.redisMastersCpuSec} s`);
    return row;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

function section(r: ClusterBenchResults): string {
  const fmt = (x: number | undefined, d = 2): string => (x === undefined || Number.isNaN(x) ? "—" : x.toFixed(d));
  const [one, cl] = r.rows;
  const ratio = (a?: number, b?: number): string => (a && b ? `${(a / b).toFixed(2)}x` : "—");
  return [
    "<!-- cluster:begin (written by bench/cluster.ts, part of `npm run bench`; do not edit) -->",
    "## Redis Cluster",
    "",
    `Two server processes on one Redis next to two on a local Redis Cluster of 3 masters and 3 replicas ` +
      `(all on this machine), the same load: rooms of ${r.load.roomSize}, ${r.load.rooms} rooms, ${r.load.writersPerRoom} writers per room at ` +
      `${r.load.ratePerWriter} edits/s each, ${r.load.durationMs / 1000} s measured. Redis CPU of the cluster is summed over its masters ` +
      `(the replicas, which only apply the replication stream, apart). Measured ${r.date.slice(0, 10)} (${r.mode}) with a 1-minute load ` +
      `average of ${r.loadAvg?.start ?? "?"} at the start and ${r.loadAvg?.end ?? "?"} at the end on ${cpus().length} cores` +
      ((r.loadAvg?.start ?? 0) > cpus().length ? ": other work was running, so the latencies mostly measure that, not the servers." : "."),
    "",
    "| target | deliveries/s | server CPU s per 1,000 deliveries | p50 ms | p99 ms | p99.9 ms | losses | Redis CPU s (masters) | replicas CPU s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...r.rows.map(
      (x) =>
        `| ${x.target} | ${x.result.deliveriesPerSec.toLocaleString("en-US")} | ${fmt(x.cpuSecPer1000, 4)} | ${fmt(x.result.latencyMs.p50)} | ${fmt(x.result.latencyMs.p99)} | ${fmt(x.result.latencyMs.p999)} | ${x.result.losses} | ${fmt(x.redisMastersCpuSec)} | ${fmt(x.redisReplicasCpuSec)} |`,
    ),
    "",
    `Cluster vs one Redis: server CPU per 1,000 deliveries ${ratio(cl?.cpuSecPer1000, one?.cpuSecPer1000)}, ` +
      `p99 ${ratio(cl?.result.latencyMs.p99, one?.result.latencyMs.p99)}, Redis CPU (masters summed vs the one Redis) ` +
      `${ratio(cl?.redisMastersCpuSec, one?.redisMastersCpuSec)}. On one 2-core machine the cluster is not expected to be faster (differences here are mostly noise): its six ` +
      `redis-servers share the cores with the servers and the load generator; what it buys is that each master carries ` +
      `only its slots' commits, broadcasts and keyspace events, so on separate machines the Redis ceiling grows with the masters.`,
    "<!-- cluster:end -->",
    "",
  ].join("\n");
}

/** Replaces (or appends) the cluster section of docs/benchmarks.md. */
function writeSection(r: ClusterBenchResults): void {
  const md = join(REPO_ROOT, "docs", "benchmarks.md");
  const text = existsSync(md) ? readFileSync(md, "utf8") : "";
  writeFileSync(md, withClusterSection(text, section(r)));
  log("wrote the Redis Cluster section of docs/benchmarks.md");
}

async function main(): Promise<void> {
  const resultsPath = join(REPO_ROOT, "bench", "results", "cluster.json");
  if (process.argv.includes("--render")) return writeSection(JSON.parse(readFileSync(resultsPath, "utf8")) as ClusterBenchResults);
  const smoke = process.argv.includes("--smoke");
  const load = smoke ? SMOKE : FULL;
  const results: ClusterBenchResults = { date: new Date().toISOString(), mode: smoke ? "smoke" : "full", load, loadAvg: { start: round(loadavg()[0]!, 2), end: 0 }, rows: [] };

  const redis = await startRedis();
  try {
    const probe = redis.client();
    const pid = Number(/process_id:(\d+)/.exec(await probe.info("server"))?.[1] ?? 0);
    probe.disconnect();
    results.rows.push(await measure("(b) 2 processes, one Redis", { REDIS_URL: redis.url }, [pid], [], load));
  } finally {
    await redis.stop();
  }
  const cluster = await startRedisCluster();
  try {
    const masters = await cluster.masters();
    const pidOf = (port: number): number => cluster.nodes.find((n) => n.port === port)?.proc?.pid ?? 0;
    const replicas = cluster.nodes.map((n) => n.port).filter((p) => !masters.includes(p));
    results.rows.push(
      await measure("(g) 2 processes, Redis Cluster (3 masters, 3 replicas)", { REDIS_CLUSTER_NODES: cluster.seeds }, masters.map(pidOf), replicas.map(pidOf), load),
    );
  } finally {
    await cluster.stop();
  }
  results.loadAvg.end = round(loadavg()[0]!, 2);
  const out = smoke ? join(REPO_ROOT, "bench", "results", "cluster-smoke.json") : resultsPath;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  log(`wrote ${out}`);
  if (!smoke) writeSection(results);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench cluster failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
