/**
 * The benchmark: `npm run bench` (full, ~8–11 min on 2 cores; writes bench/results/latest.json and
 * docs/benchmarks.md), `npm run bench:smoke` (seconds; writes bench/results/smoke.json only),
 * `npm run bench:profile` (room-of-10 load with `node --cpu-prof` on the server processes).
 *
 * Options: --smoke, --profile, --out <file.json>, --md <file.md> (default docs/benchmarks.md for the
 * full run, none otherwise), --targets a,b,c,d,e,f, --loads 1,2 (fan-out loads by index, 0-based), --no-fanout, --no-idle,
 * --no-trace, --no-docsize, --render (measure nothing:
 * rewrite docs/benchmarks.md from bench/results/latest.json and bench/notes.md).
 * Every server runs in its own child process; the load comes from another one (bench/load/loadgen.ts).
 */
import { execFileSync, fork } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem, release } from "node:os";
import { dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { startRedis, type RedisServerHandle } from "../test/helpers/redis-server.js";
import type { ChildStats } from "./lib/child.js";
import type {
  DocSizeResult, FanoutJob, FanoutResult, IdleResult, Job, JobResult, LoadMessage, OrchestratorMessage, Proto, TraceJob, TraceResult,
} from "./lib/jobs.js";
import { procCpuSec, startChild, type ServerChild } from "./lib/servers.js";
import { clusterSectionOf, withClusterSection } from "./lib/cluster-section.js";
import { renderMarkdown } from "./lib/report.js";
import { summarizeProfile } from "./lib/profile.js";

/** Repository root (this file runs from `<root>/dist/bench/`). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));

export interface TargetSpec {
  id: "a" | "b" | "c" | "d" | "e" | "f" | "o";
  name: string;
  script: string;
  processes: number;
  redis: boolean;
  proto: Proto;
  /** Node flags for this target's processes (target o: BENCH_OTHER_NODE_ARGS). */
  nodeArgs?: string[];
}

export const TARGETS: TargetSpec[] = [
  { id: "a", name: "(a) this server, 1 process, in-memory", script: "targets/codespace-server.js", processes: 1, redis: false, proto: "sio" },
  { id: "b", name: "(b) this server, 2 processes, Redis", script: "targets/codespace-server.js", processes: 2, redis: true, proto: "sio" },
  { id: "c", name: "(c) Socket.IO relay + Redis adapter, 2 processes", script: "baselines/socketio-relay.js", processes: 2, redis: true, proto: "sio" },
  { id: "d", name: "(d) raw ws relay, pre-encoded frames, 1 process", script: "baselines/ws-relay.js", processes: 1, redis: false, proto: "ws" },
  { id: "e", name: "(e) Hocuspocus + Redis extension, 2 processes (Yjs)", script: "baselines/hocuspocus.js", processes: 2, redis: true, proto: "hocuspocus" },
  { id: "f", name: "(f) ShareDB, 1 process, in-memory DB + Redis pub/sub", script: "baselines/sharedb.js", processes: 1, redis: true, proto: "sharedb" },
  // A/B: (b) built from another checkout, BENCH_OTHER_DIST=<that checkout>/dist (only with --targets o)
  ...(process.env.BENCH_OTHER_DIST
    ? [{ id: "o", name: `(o) (b) built at ${process.env.BENCH_OTHER_DIST}`, script: join(process.env.BENCH_OTHER_DIST, "bench", "targets", "codespace-server.js"), processes: 2, redis: true, proto: "sio", nodeArgs: (process.env.BENCH_OTHER_NODE_ARGS ?? "").split(" ").filter(Boolean) } as TargetSpec]
    : []),
];

export interface LoadShape {
  roomSize: number;
  rooms: number;
  writersPerRoom: number;
  ratePerWriter: number;
  /** Measured window of this load, ms (default BenchConfig.durationMs). */
  durationMs?: number;
}

export interface BenchConfig {
  loads: LoadShape[];
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  idleConnections: number;
  idleRoomSize: number;
  traceReaders: number;
  traceLimit: number;
  traceChunk: number;
  traceTargets: ("a" | "b")[];
  /** Trace replay modes measured (see TraceJob.mode). */
  traceModes: TraceJob["mode"][];
  /** Document sizes (UTF-16 code units) of the commit-cost case, on (b). */
  docSizes: number[];
  /** Single-update commits per document size, and updates sent in batches of `docBatch`. */
  docEdits: number;
  docBatchUpdates: number;
  docBatch: number;
}

const FULL: BenchConfig = {
  loads: [
    { roomSize: 2, rooms: 200, writersPerRoom: 1, ratePerWriter: 10 },
    // the target loads: measured 20 s, as in the issue (a 6 s window left p99.9 to a few
    // dozen samples and moved the verdicts from run to run)
    { roomSize: 10, rooms: 50, writersPerRoom: 2, ratePerWriter: 10, durationMs: 20_000 },
    { roomSize: 10, rooms: 50, writersPerRoom: 2, ratePerWriter: 20, durationMs: 20_000 },
    { roomSize: 50, rooms: 4, writersPerRoom: 2, ratePerWriter: 50 },
  ],
  warmupMs: 2000,
  durationMs: 6000,
  drainMs: 5000,
  idleConnections: 5000,
  idleRoomSize: 10,
  traceReaders: 3,
  traceLimit: 0,
  traceChunk: 20,
  traceTargets: ["a", "b"],
  traceModes: ["composing", "keystrokes"],
  docSizes: [5_000, 100_000, 1_000_000],
  docEdits: 200,
  docBatchUpdates: 5000,
  docBatch: 500,
};

const SMOKE: BenchConfig = {
  loads: [{ roomSize: 10, rooms: 2, writersPerRoom: 1, ratePerWriter: 20 }],
  warmupMs: 300,
  durationMs: 1000,
  drainMs: 3000,
  idleConnections: 40,
  idleRoomSize: 10,
  traceReaders: 2,
  traceLimit: 1500,
  traceChunk: 20,
  traceTargets: ["b"],
  traceModes: ["composing", "keystrokes"],
  docSizes: [5_000, 100_000],
  docEdits: 20,
  docBatchUpdates: 1000,
  docBatch: 500,
};

export interface Sample {
  servers: ChildStats[];
  redisCpuSec: number;
}

export interface FanoutRow {
  target: TargetSpec["id"];
  targetName: string;
  load: LoadShape;
  result: FanoutResult;
  serverCpuSec: number;
  cpuSecPer1000: number;
  redisCpuSec: number;
  /** Event-loop delay over the measured window, worst of the target's processes, ms. */
  eventLoopDelayMs: { p99: number; max: number };
  /**
   * Our server only: commits retried because another process committed first (codespace_commit_conflicts_total),
   * per 100 updates committed (codespace_updates_accepted_total), over the window.
   */
  conflictsPer100Updates?: number;
}

export interface IdleRow {
  target: TargetSpec["id"];
  targetName: string;
  result: IdleResult;
  connectionsSeen: number;
  rssPerConnBytes: number;
  heapPerConnBytes: number;
}

export interface TraceRow {
  target: TargetSpec["id"];
  targetName: string;
  result: TraceResult;
  /** Servers' and redis-server's CPU from just before the first edit to convergence, seconds. */
  serverCpuSec: number;
  redisCpuSec: number;
}

/** One cell of the commit-cost case: target (b), one document size and kind, one batch size. */
export interface DocSizeRow {
  size: number;
  nonAscii: boolean;
  /** Updates per insert_value (1: one commit per edit). */
  batch: number;
  result: DocSizeResult;
  /**
   * Per commit (insert_value) and per update: bytes into Redis (INFO stats total_net_input_bytes),
   * the servers' CPU ms, and redis-server's time running the commit script (INFO commandstats EVALSHA).
   */
  redisInputBytesPerCommit: number;
  serverCpuMsPerCommit: number;
  redisCpuMsPerCommit: number;
  redisInputBytesPerUpdate: number;
  serverCpuMsPerUpdate: number;
  redisCpuMsPerUpdate: number;
  /** The stored `code` equals the writer's text (SHA-1). */
  storedMatches: boolean;
}

export interface BenchResults {
  date: string;
  command: string;
  mode: "full" | "smoke" | "profile";
  machine: { cpus: number; model: string; memGiB: number; node: string; kernel: string };
  /** 1-minute load average at the start and the end (other work on the machine shows here). */
  loadAvg: { start: number; end: number };
  /** The code measured: HEAD and whether the working tree had uncommitted changes. */
  git: { commit: string; dirty: boolean };
  config: BenchConfig;
  fanout: FanoutRow[];
  idle: IdleRow[];
  trace: TraceRow[];
  docsize: DocSizeRow[];
  /** Rows replaced by a later partial run (spliced into latest.json by hand, see the report). */
  reruns?: { date: string; git: { commit: string; dirty: boolean }; what: string; loadAvg: { start: number; end: number } }[];
  /** Jobs that failed (the run goes on without them): what, and the error's first line. */
  failures: { what: string; error: string }[];
  profile?: unknown;
  durationSec: number;
}

// ---- plumbing -----------------------------------------------------------------------------------

interface RunningTarget {
  spec: TargetSpec;
  children: ServerChild[];
  urls: string[];
  sample(gc?: boolean): Promise<Sample>;
  stop(): Promise<void>;
}

async function startTarget(
  spec: TargetSpec,
  redis: RedisServerHandle | undefined,
  redisPid: number,
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<RunningTarget> {
  // The per-socket rate limit (default 100 events/s) is raised: under a starved load generator the
  // open-loop writers catch up in bursts, which would measure the limiter instead of the server
  // (the relays have none). The per-keystroke writer stays under the default anyway.
  const env: Record<string, string> = { ...(spec.redis && redis ? { REDIS_URL: redis.url } : {}), RATE_LIMIT_EVENTS: "100000", ...extraEnv };
  const children: ServerChild[] = [];
  for (let i = 0; i < spec.processes; i++) children.push(await startChild(isAbsolute(spec.script) ? spec.script : join(DIST_BENCH, spec.script), env, [...(spec.nodeArgs ?? []), ...nodeArgs]));
  return {
    spec,
    children,
    urls: children.map((c) => c.url),
    sample: async (gc = false) => ({ servers: await Promise.all(children.map((c) => c.stats(gc))), redisCpuSec: spec.redis ? procCpuSec(redisPid) : 0 }),
    stop: async () => {
      await Promise.all(children.map((c) => c.stop()));
    },
  };
}

/** Forks the load generator with `job`; `onSample` answers its sample requests. */
function runLoad(job: Job, onSample: () => Promise<void>): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    // diagnostics: BENCH_LOADGEN_ARGS adds node flags to the load generator (e.g. "--cpu-prof")
    const execArgv = (process.env.BENCH_LOADGEN_ARGS ?? "").split(" ").filter(Boolean);
    const child = fork(join(DIST_BENCH, "load", "loadgen.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
    let done = false;
    child.on("message", (m: LoadMessage) => {
      if (m.type === "rpc") {
        void onSample().then(() => child.send({ type: "rpc-result", id: m.id } satisfies OrchestratorMessage));
      } else if (m.type === "result") {
        done = true;
        resolve(m.result);
      } else {
        done = true;
        reject(new Error(`load generator failed: ${m.message}`));
      }
    });
    child.once("exit", (code) => {
      if (!done) reject(new Error(`load generator exited with code ${code} before a result`));
    });
    child.send({ type: "job", job } satisfies OrchestratorMessage);
  });
}

const cpuOf = (s: ChildStats): number => (s.cpuUserUs + s.cpuSystemUs) / 1e6;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
let runSeq = 0;
const token = (what: string): string => `tmp-bench${process.pid}-${++runSeq}-${what}-`;

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function fanoutRun(t: RunningTarget, load: LoadShape, cfg: BenchConfig): Promise<FanoutRow> {
  const samples: Sample[] = [];
  const job: FanoutJob = {
    kind: "fanout",
    proto: t.spec.proto,
    urls: t.urls,
    ...load,
    warmupMs: cfg.warmupMs,
    durationMs: load.durationMs ?? cfg.durationMs,
    drainMs: cfg.drainMs,
    tokenPrefix: token(`r${load.roomSize}`),
  };
  const result = (await runLoad(job, async () => void samples.push(await t.sample()))) as FanoutResult;
  const [s0, s1] = samples as [Sample, Sample];
  const serverCpuSec = sum(s1.servers.map(cpuOf)) - sum(s0.servers.map(cpuOf));
  const row: FanoutRow = {
    target: t.spec.id,
    targetName: t.spec.name,
    load,
    result,
    serverCpuSec: round(serverCpuSec, 3),
    cpuSecPer1000: result.deliveries > 0 ? round(serverCpuSec / (result.deliveries / 1000), 5) : NaN,
    redisCpuSec: round(s1.redisCpuSec - s0.redisCpuSec, 2),
    eventLoopDelayMs: {
      p99: round(Math.max(...s1.servers.map((s) => s.eventLoopDelayMs.p99)), 2),
      max: round(Math.max(...s1.servers.map((s) => s.eventLoopDelayMs.max)), 2),
    },
  };
  const counted = (s: Sample, k: "accepted" | "conflicts"): number => sum(s.servers.map((x) => x.commits?.[k] ?? 0));
  if (s1.servers.every((s) => s.commits)) {
    const accepted = counted(s1, "accepted") - counted(s0, "accepted");
    if (accepted > 0) row.conflictsPer100Updates = round(((counted(s1, "conflicts") - counted(s0, "conflicts")) / accepted) * 100, 2);
  }
  log(
    `${t.spec.id} room ${load.roomSize} @${result.offeredEditsPerSec}/s, loop delay p99 ${row.eventLoopDelayMs.p99} max ${row.eventLoopDelayMs.max} ms: ${result.deliveriesPerSec} deliveries/s, cpu ${row.cpuSecPer1000} s/1000, ` +
      `p50 ${result.latencyMs.p50} p99 ${result.latencyMs.p99} p99.9 ${result.latencyMs.p999} ms` +
      (result.latencyCrossProcessMs ? ` (same process p99 ${result.latencySameProcessMs?.p99}, other ${result.latencyCrossProcessMs.p99})` : "") +
      `, lost ${result.losses}, ooo ${result.outOfOrder}, ack errors ${JSON.stringify(result.ackErrors)}` +
      (row.conflictsPer100Updates !== undefined ? `, commits retried ${row.conflictsPer100Updates} per 100 updates` : ""),
  );
  return row;
}

async function idleRun(t: RunningTarget, cfg: BenchConfig): Promise<IdleRow> {
  const samples: Sample[] = [];
  const result = (await runLoad(
    { kind: "idle", proto: t.spec.proto, urls: t.urls, connections: cfg.idleConnections, roomSize: cfg.idleRoomSize, tokenPrefix: token("idle") },
    async () => void samples.push(await t.sample(true)),
  )) as IdleResult;
  const [s0, s1] = samples as [Sample, Sample];
  const n = result.connections;
  const row: IdleRow = {
    target: t.spec.id,
    targetName: t.spec.name,
    result,
    connectionsSeen: sum(s1.servers.map((s) => s.connections)),
    rssPerConnBytes: Math.round((sum(s1.servers.map((s) => s.rss)) - sum(s0.servers.map((s) => s.rss))) / n),
    heapPerConnBytes: Math.round((sum(s1.servers.map((s) => s.heapUsed)) - sum(s0.servers.map((s) => s.heapUsed))) / n),
  };
  const perConn = (k: "heapTotal" | "external" | "arrayBuffers"): number =>
    Math.round((sum(s1.servers.map((s) => s[k])) - sum(s0.servers.map((s) => s[k]))) / n);
  log(
    `${t.spec.id} idle ${n}: rss ${row.rssPerConnBytes} B/conn, heap ${row.heapPerConnBytes} B/conn ` +
      `(heap total ${perConn("heapTotal")}, external ${perConn("external")}, array buffers ${perConn("arrayBuffers")}; server sees ${row.connectionsSeen})`,
  );
  return row;
}

/** The largest sequential trace (one author) in the traces directory. */
function largestTrace(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".json.gz"))
    .map((f) => join(dir, f))
    .sort((x, y) => statSync(y).size - statSync(x).size);
  for (const f of files) {
    const head = gunzipSync(readFileSync(f)).subarray(0, 200).toString();
    if (!head.includes('"concurrent"')) return f;
  }
  throw new Error(`no sequential trace in ${dir}`);
}

async function traceRun(t: RunningTarget, cfg: BenchConfig, tracePath: string, mode: TraceJob["mode"]): Promise<TraceRow> {
  const samples: Sample[] = [];
  const result = (await runLoad(
    {
      kind: "trace",
      urls: t.urls,
      tracePath,
      readers: cfg.traceReaders,
      limit: cfg.traceLimit,
      chunk: cfg.traceChunk,
      token: token("trace").slice(0, -1),
      timeoutMs: 120_000,
      mode,
      maxBatch: 500,
    },
    async () => void samples.push(await t.sample()),
  )) as TraceResult;
  const [s0, s1] = samples as [Sample, Sample];
  const row: TraceRow = {
    target: t.spec.id,
    targetName: t.spec.name,
    result,
    serverCpuSec: round(sum(s1.servers.map(cpuOf)) - sum(s0.servers.map(cpuOf)), 3),
    redisCpuSec: round(s1.redisCpuSec - s0.redisCpuSec, 2),
  };
  log(
    `${t.spec.id} trace ${result.trace} (${mode}): ${result.transactions} txns -> ${result.serverUpdates} server updates in ${result.batches} batches, last reader at ${result.lastReaderConvergedMs} ms ` +
      `(${result.transactionsPerSec} txns/s), server cpu ${row.serverCpuSec} s, redis cpu ${row.redisCpuSec} s, converged ${result.converged} ${result.errors.join("; ")}`,
  );
  return row;
}

/**
 * A code-like document of `size` UTF-16 code units in lines of about 60; `nonAscii`: every 8th line
 * carries a comment with 2-, 3- and 4-byte characters (é, 中, 😀).
 */
export function makeDocument(size: number, nonAscii: boolean): string {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = nonAscii && i % 8 === 0 ? `    // é 中文 😀 note ${i}: naïve café` : `    const v${i} = compute(v${i >> 1}, "value ${i}", ${i * 7});`;
    lines.push(line);
    length += line.length + 1;
  }
  return lines.join("\n").slice(0, size).replace(/[\ud800-\udbff]$/, "x");
}

async function docsizeRun(t: RunningTarget, cfg: BenchConfig, probe: Redis, size: number, nonAscii: boolean, batch: number, edits: number): Promise<DocSizeRow> {
  const tok = token(`doc${size}`).slice(0, -1);
  const doc = makeDocument(size, nonAscii);
  await probe.hset(tok, "name", "bench", "code", doc); // as the site writes a codespace
  const inputBytes = async (): Promise<number> => Number(/total_net_input_bytes:(\d+)/.exec(await probe.info("stats"))?.[1] ?? NaN);
  /** redis-server's own time in EVALSHA (INFO commandstats, microseconds): finer than /proc's 10 ms ticks. */
  const scriptUs = async (): Promise<number> => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(await probe.info("commandstats"))?.[1] ?? 0);
  const samples: Sample[] = [];
  const bytes: number[] = [];
  const us: number[] = [];
  const result = (await runLoad(
    { kind: "docsize", urls: t.urls, token: tok, edits, batch, inserts: nonAscii ? ["x", "é", "😀"] : ["x"] },
    async () => {
      bytes.push(await inputBytes());
      us.push(await scriptUs());
      samples.push(await t.sample());
    },
  )) as DocSizeResult;
  const [s0, s1] = samples as [Sample, Sample];
  const stored = (await probe.hget(tok, "code")) ?? "";
  await probe.del(tok);
  const serverMs = (sum(s1.servers.map(cpuOf)) - sum(s0.servers.map(cpuOf))) * 1000;
  const redisMs = (us[1]! - us[0]!) / 1000;
  const inBytes = bytes[1]! - bytes[0]!;
  const c = Math.max(1, result.commits);
  const u = Math.max(1, result.updates);
  const row: DocSizeRow = {
    size,
    nonAscii,
    batch,
    result,
    redisInputBytesPerCommit: Math.round(inBytes / c),
    serverCpuMsPerCommit: round(serverMs / c, 3),
    redisCpuMsPerCommit: round(redisMs / c, 3),
    redisInputBytesPerUpdate: Math.round(inBytes / u),
    serverCpuMsPerUpdate: round(serverMs / u, 4),
    redisCpuMsPerUpdate: round(redisMs / u, 4),
    storedMatches: createHash("sha1").update(stored).digest("hex") === result.sha1,
  };
  log(
    `b doc ${size} ${nonAscii ? "non-ASCII" : "ASCII"} batch ${batch}: ${result.commits} commits, ${result.updates} updates; per commit ${row.redisInputBytesPerCommit} B into Redis, ` +
      `server ${row.serverCpuMsPerCommit} ms, redis ${row.redisCpuMsPerCommit} ms; stored code matches ${row.storedMatches} ${result.errors.join("; ")}`,
  );
  return row;
}

/**
 * Runs one job; a failure (a load generator that could not connect within its timeout on a starved
 * machine, ...) is logged and recorded in `results.failures` instead of ending the whole run.
 */
async function attempt(results: BenchResults, what: string, job: () => Promise<void>): Promise<void> {
  try {
    await job();
  } catch (err) {
    const error = ((err as Error).message ?? String(err)).split("\n")[0]!.slice(0, 300);
    results.failures.push({ what, error });
    log(`FAILED ${what}: ${error}`);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function gitState(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: REPO_ROOT }).toString().trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---- main ---------------------------------------------------------------------------------------

/** Rewrites the report from the last full results and the current notes (after editing the notes). */
function renderOnly(): void {
  const results = JSON.parse(readFileSync(join(REPO_ROOT, "bench", "results", "latest.json"), "utf8")) as BenchResults;
  const notes = readFileSync(join(REPO_ROOT, "bench", "notes.md"), "utf8");
  const md = join(REPO_ROOT, "docs", "benchmarks.md");
  // keep the Redis Cluster section bench/cluster.ts wrote
  const cluster = clusterSectionOf(existsSync(md) ? readFileSync(md, "utf8") : "");
  const text = renderMarkdown(results, notes);
  writeFileSync(md, cluster ? withClusterSection(text, cluster) : text);
  log("wrote docs/benchmarks.md");
}

const USAGE = `usage: node dist/bench/run.js [--smoke | --profile | --render] [--targets a,b,c,d,e,f,o] [--loads 0,1,2,3]
       [--no-fanout] [--no-idle] [--no-trace] [--no-docsize] [--out file.json] [--md file.md] [--help]
A full run (no --smoke/--profile) writes bench/results/latest.json and docs/benchmarks.md unless
--out/--md say otherwise. Env: BENCH_OTHER_DIST and BENCH_OTHER_NODE_ARGS (target o), BENCH_NODE_ARGS, BENCH_CHILD_LOG, BENCH_HEAP_SPACES, BENCH_ALLOC_PROFILE,
BENCH_LOADGEN_ARGS, BENCH_TRACES_DIR.`;
const FLAGS = new Set(["--smoke", "--profile", "--render", "--no-fanout", "--no-idle", "--no-trace", "--no-docsize"]);
const VALUED = new Set(["--targets", "--loads", "--out", "--md"]);

/** Refuses unknown options (a typo must not start an 8-minute run that rewrites the report). */
function checkArgs(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUED.has(a) && argv[i + 1] !== undefined) i++;
    else if (!FLAGS.has(a)) {
      process.stderr.write(`unknown option ${a}\n${USAGE}\n`);
      process.exit(2);
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE + "\n");
    return;
  }
  checkArgs(argv);
  if (process.argv.includes("--render")) return renderOnly();
  const started = Date.now();
  const smoke = process.argv.includes("--smoke");
  const profile = process.argv.includes("--profile");
  const mode = profile ? "profile" : smoke ? "smoke" : "full";
  const cfg = smoke ? SMOKE : FULL;
  const out = arg("--out") ?? join(REPO_ROOT, "bench", "results", mode === "full" ? "latest.json" : `${mode}.json`);
  const md = arg("--md") ?? (mode === "full" ? join(REPO_ROOT, "docs", "benchmarks.md") : undefined);
  const only = (arg("--targets") ?? "a,b,c,d,e,f").split(",");
  const targets = TARGETS.filter((t) => only.includes(t.id));
  const traceDir = process.env.BENCH_TRACES_DIR ?? join(REPO_ROOT, "test", "fixtures", "traces");

  const redis = await startRedis();
  const probe = redis.client();
  const info = await probe.info("server");
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);

  const results: BenchResults = {
    date: new Date().toISOString(),
    // what produced this report: the npm script, or the exact command line when options were given
    command: process.argv.slice(2).every((a) => a === `--${mode}`)
      ? "npm run " + (mode === "full" ? "bench" : `bench:${mode}`)
      : ["node dist/bench/run.js", ...process.argv.slice(2)].join(" "),
    mode,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?", memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() },
    loadAvg: { start: round(loadavg()[0]!, 2), end: 0 },
    git: gitState(),
    config: cfg,
    fanout: [],
    idle: [],
    trace: [],
    docsize: [],
    failures: [],
    durationSec: 0,
  };

  try {
    if (profile) {
      const dir = join(REPO_ROOT, "bench", "results", "profiles");
      mkdirSync(dir, { recursive: true });
      const summaries: Record<string, unknown> = {};
      const profiled = async (key: string, spec: TargetSpec, run: (t: RunningTarget) => Promise<void>): Promise<void> => {
        const before = new Set(readdirSync(dir));
        const t = await startTarget(spec, redis, redisPid, ["--cpu-prof", "--cpu-prof-dir", dir]);
        await run(t);
        await t.stop();
        const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile") && !before.has(f));
        summaries[key] = files.map((f) => ({ file: relative(REPO_ROOT, join(dir, f)), ...summarizeProfile(join(dir, f), REPO_ROOT) }));
        await probe.flushall();
      };
      // rooms of 10 at 2,000 edits/s on (a), (b) and the relay (c); the per-keystroke replay on (b)
      for (const spec of TARGETS.filter((t) => ["a", "b", "c"].includes(t.id))) {
        await profiled(spec.id, spec, async (t) => void results.fanout.push(await fanoutRun(t, FULL.loads[2]!, FULL)));
      }
      await profiled("b-keystrokes", TARGETS.find((t) => t.id === "b")!, async (t) => {
        results.trace.push(await traceRun(t, FULL, largestTrace(traceDir), "keystrokes"));
      });
      results.profile = summaries;
    } else {
      for (const spec of targets) {
        let t: RunningTarget;
        if (!process.argv.includes("--no-fanout")) {
          t = await startTarget(spec, redis, redisPid);
          for (const load of cfg.loads.filter((_, i) => !arg("--loads") || arg("--loads")!.split(",").includes(String(i)))) await attempt(results, `${spec.id} fan-out, rooms of ${load.roomSize} @${load.rooms * load.writersPerRoom * load.ratePerWriter}/s`, async () => void results.fanout.push(await fanoutRun(t, load, cfg)));
          await t.stop();
          await probe.flushall();
        }
        if (!process.argv.includes("--no-idle")) {
          t = await startTarget(spec, redis, redisPid);
          await attempt(results, `${spec.id} idle`, async () => void results.idle.push(await idleRun(t, cfg)));
          await t.stop();
          await probe.flushall();
        }
      }
      if (!process.argv.includes("--no-trace")) {
        const tracePath = largestTrace(traceDir);
        for (const mode of cfg.traceModes) {
          for (const spec of targets.filter((t) => (cfg.traceTargets as string[]).includes(t.id))) {
            const t = await startTarget(spec, redis, redisPid);
            await attempt(results, `${spec.id} trace ${mode}`, async () => void results.trace.push(await traceRun(t, cfg, tracePath, mode)));
            await t.stop();
            await probe.flushall();
          }
        }
      }
      const b = targets.find((t) => t.id === "b");
      if (b && !process.argv.includes("--no-docsize")) {
        // MAX_DOC_LENGTH above the largest size, so a 1,000,000-character document can still grow
        const t = await startTarget(b, redis, redisPid, [], { MAX_DOC_LENGTH: String(2 * Math.max(...cfg.docSizes)) });
        for (const size of cfg.docSizes) {
          for (const nonAscii of [false, true]) {
            for (const [batch, edits] of [[1, cfg.docEdits], [cfg.docBatch, cfg.docBatchUpdates]] as const) {
              await attempt(results, `b document ${size} ${nonAscii ? "non-ASCII" : "ASCII"} batch ${batch}`, async () =>
                void results.docsize.push(await docsizeRun(t, cfg, probe, size, nonAscii, batch, edits)),
              );
            }
          }
        }
        await t.stop();
        await probe.flushall();
      }
    }
  } finally {
    probe.disconnect();
    await redis.stop();
  }
  results.durationSec = Math.round((Date.now() - started) / 1000);
  results.loadAvg.end = round(loadavg()[0]!, 2);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  log(`wrote ${relative(REPO_ROOT, out) || out}`);
  if (md) {
    const notesPath = join(REPO_ROOT, "bench", "notes.md");
    const notes = existsSync(notesPath) ? readFileSync(notesPath, "utf8") : "";
    writeFileSync(md, renderMarkdown(results, notes));
    log(`wrote ${relative(REPO_ROOT, md) || md}`);
  }
  log(`done in ${results.durationSec} s`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
