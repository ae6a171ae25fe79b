/**
 * The benchmark: `npm run bench` (full, ~4 min on 2 cores; writes bench/results/latest.json and
 * docs/benchmarks.md), `npm run bench:smoke` (seconds; writes bench/results/smoke.json only),
 * `npm run bench:profile` (room-of-10 load with `node --cpu-prof` on the server processes).
 *
 * Options: --smoke, --profile, --out <file.json>, --md <file.md> (default docs/benchmarks.md for the
 * full run, none otherwise), --targets a,b,c,d, --no-idle, --no-trace, --render (measure nothing:
 * rewrite docs/benchmarks.md from bench/results/latest.json and bench/notes.md).
 * Every server runs in its own child process; the load comes from another one (bench/load/loadgen.ts).
 */
import { execFileSync, fork } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem, release } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { startRedis, type RedisServerHandle } from "../test/helpers/redis-server.js";
import type { ChildStats } from "./lib/child.js";
import type { FanoutJob, FanoutResult, IdleResult, Job, JobResult, LoadMessage, OrchestratorMessage, TraceResult } from "./lib/jobs.js";
import { procCpuSec, startChild, type ServerChild } from "./lib/servers.js";
import { renderMarkdown } from "./lib/report.js";
import { summarizeProfile } from "./lib/profile.js";

/** Repository root (this file runs from `<root>/dist/bench/`). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIST_BENCH = dirname(fileURLToPath(import.meta.url));

export interface TargetSpec {
  id: "a" | "b" | "c" | "d";
  name: string;
  script: string;
  processes: number;
  redis: boolean;
  proto: "sio" | "ws";
}

export const TARGETS: TargetSpec[] = [
  { id: "a", name: "(a) this server, 1 process, in-memory", script: "targets/codespace-server.js", processes: 1, redis: false, proto: "sio" },
  { id: "b", name: "(b) this server, 2 processes, Redis", script: "targets/codespace-server.js", processes: 2, redis: true, proto: "sio" },
  { id: "c", name: "(c) Socket.IO relay + Redis adapter, 2 processes", script: "baselines/socketio-relay.js", processes: 2, redis: true, proto: "sio" },
  { id: "d", name: "(d) raw ws relay, pre-encoded frames, 1 process", script: "baselines/ws-relay.js", processes: 1, redis: false, proto: "ws" },
];

export interface LoadShape {
  roomSize: number;
  rooms: number;
  writersPerRoom: number;
  ratePerWriter: number;
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
}

const FULL: BenchConfig = {
  loads: [
    { roomSize: 2, rooms: 200, writersPerRoom: 1, ratePerWriter: 10 },
    { roomSize: 10, rooms: 20, writersPerRoom: 2, ratePerWriter: 50 },
    { roomSize: 50, rooms: 4, writersPerRoom: 2, ratePerWriter: 50 },
  ],
  warmupMs: 2000,
  durationMs: 10_000,
  drainMs: 5000,
  idleConnections: 5000,
  idleRoomSize: 10,
  traceReaders: 3,
  traceLimit: 0,
  traceChunk: 20,
  traceTargets: ["a", "b"],
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

async function startTarget(spec: TargetSpec, redis: RedisServerHandle | undefined, redisPid: number, nodeArgs: string[] = []): Promise<RunningTarget> {
  const env: Record<string, string> = spec.redis && redis ? { REDIS_URL: redis.url } : {};
  const children: ServerChild[] = [];
  for (let i = 0; i < spec.processes; i++) children.push(await startChild(join(DIST_BENCH, spec.script), env, nodeArgs));
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
    const child = fork(join(DIST_BENCH, "load", "loadgen.js"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
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
    durationMs: cfg.durationMs,
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
  };
  log(
    `${t.spec.id} room ${load.roomSize}: ${result.deliveriesPerSec} deliveries/s, cpu ${row.cpuSecPer1000} s/1000, ` +
      `p50 ${result.latencyMs.p50} p99 ${result.latencyMs.p99} p99.9 ${result.latencyMs.p999} ms, lost ${result.losses}, ooo ${result.outOfOrder}, ack errors ${JSON.stringify(result.ackErrors)}`,
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
  log(`${t.spec.id} idle ${n}: rss ${row.rssPerConnBytes} B/conn, heap ${row.heapPerConnBytes} B/conn (server sees ${row.connectionsSeen})`);
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

async function traceRun(t: RunningTarget, cfg: BenchConfig, tracePath: string): Promise<TraceRow> {
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
    },
    async () => {},
  )) as TraceResult;
  log(
    `${t.spec.id} trace ${result.trace}: ${result.transactions} txns -> ${result.serverUpdates} server updates, last reader at ${result.lastReaderConvergedMs} ms ` +
      `(${result.transactionsPerSec} txns/s), converged ${result.converged} ${result.errors.join("; ")}`,
  );
  return { target: t.spec.id, targetName: t.spec.name, result };
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
  writeFileSync(join(REPO_ROOT, "docs", "benchmarks.md"), renderMarkdown(results, notes));
  log("wrote docs/benchmarks.md");
}

async function main(): Promise<void> {
  if (process.argv.includes("--render")) return renderOnly();
  const started = Date.now();
  const smoke = process.argv.includes("--smoke");
  const profile = process.argv.includes("--profile");
  const mode = profile ? "profile" : smoke ? "smoke" : "full";
  const cfg = smoke ? SMOKE : FULL;
  const out = arg("--out") ?? join(REPO_ROOT, "bench", "results", mode === "full" ? "latest.json" : `${mode}.json`);
  const md = arg("--md") ?? (mode === "full" ? join(REPO_ROOT, "docs", "benchmarks.md") : undefined);
  const only = (arg("--targets") ?? "a,b,c,d").split(",");
  const targets = TARGETS.filter((t) => only.includes(t.id));
  const traceDir = process.env.BENCH_TRACES_DIR ?? join(REPO_ROOT, "test", "fixtures", "traces");

  const redis = await startRedis();
  const probe = redis.client();
  const info = await probe.info("server");
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);

  const results: BenchResults = {
    date: new Date().toISOString(),
    command: "npm run " + (mode === "full" ? "bench" : `bench:${mode}`),
    mode,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "?", memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, kernel: release() },
    loadAvg: { start: round(loadavg()[0]!, 2), end: 0 },
    git: gitState(),
    config: cfg,
    fanout: [],
    idle: [],
    trace: [],
    durationSec: 0,
  };

  try {
    if (profile) {
      const dir = join(REPO_ROOT, "bench", "results", "profiles");
      mkdirSync(dir, { recursive: true });
      const summaries: Record<string, unknown> = {};
      for (const spec of TARGETS.filter((t) => t.id === "a" || t.id === "b")) {
        const before = new Set(readdirSync(dir));
        const t = await startTarget(spec, redis, redisPid, ["--cpu-prof", "--cpu-prof-dir", dir]);
        results.fanout.push(await fanoutRun(t, FULL.loads[1]!, FULL));
        await t.stop();
        const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile") && !before.has(f));
        summaries[spec.id] = files.map((f) => ({ file: relative(REPO_ROOT, join(dir, f)), ...summarizeProfile(join(dir, f), REPO_ROOT) }));
        await probe.flushall();
      }
      results.profile = summaries;
    } else {
      for (const spec of targets) {
        let t = await startTarget(spec, redis, redisPid);
        for (const load of cfg.loads) results.fanout.push(await fanoutRun(t, load, cfg));
        await t.stop();
        await probe.flushall();
        if (!process.argv.includes("--no-idle")) {
          t = await startTarget(spec, redis, redisPid);
          results.idle.push(await idleRun(t, cfg));
          await t.stop();
          await probe.flushall();
        }
      }
      if (!process.argv.includes("--no-trace")) {
        const tracePath = largestTrace(traceDir);
        for (const spec of targets.filter((t) => (cfg.traceTargets as string[]).includes(t.id))) {
          const t = await startTarget(spec, redis, redisPid);
          results.trace.push(await traceRun(t, cfg, tracePath));
          await t.stop();
          await probe.flushall();
        }
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
