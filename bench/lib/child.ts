/**
 * Bench-only plumbing for a server child process (our server wrapper and the baselines): it
 * announces its port over IPC, answers `stats` requests with its own CPU and memory accounting, and
 * stops cleanly on a `stop` message or SIGTERM (so `--cpu-prof` can write its profile).
 * Nothing here is loaded by the production server.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import v8 from "node:v8";
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ChildStats {
  pid: number;
  /** process.cpuUsage() of the child itself, microseconds. */
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Bytes, after a full GC when the child runs with --expose-gc and `gc` was asked. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Open client connections as the server counts them. */
  connections: number;
  /** Our server only (targets a, b): its codespace_updates_accepted_total and codespace_commit_conflicts_total. */
  commits?: { accepted: number; conflicts: number };
  /** Event-loop delay since the previous stats answer (perf_hooks.monitorEventLoopDelay, a timer every 10 ms), ms. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export type ParentMessage = { type: "stats"; id: number; gc?: boolean } | { type: "stop" };
export type ChildMessage = { type: "listening"; port: number } | { type: "stats"; id: number; stats: ChildStats };

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

/**
 * Wires IPC for a started server: announce `port`, answer stats, stop with `close` then exit 0.
 * `commits` (our server only) reads its commit counters for ChildStats.commits.
 */
export function serveBench(port: number, connections: () => number, close: () => Promise<void>, commits?: () => Promise<ChildStats["commits"]>): void {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(0), 5000);
    t.unref();
    close().finally(() => process.exit(0));
  };
  const allocProfile = allocationProfiler(process.env.BENCH_ALLOC_PROFILE);
  process.on("message", async (m: ParentMessage) => {
    if (m.type === "stop") return stop();
    if (m.type === "stats") {
      if (m.gc) await allocProfile?.(m.id);
      const gc = (globalThis as { gc?: () => void }).gc;
      if (m.gc && gc) {
        gc();
        gc();
      }
      // diagnostics (with BENCH_CHILD_LOG): each V8 heap space as [name, size, used, physical] in KiB
      if (process.env.BENCH_HEAP_SPACES) {
        const spaces = v8.getHeapSpaceStatistics().map((x) => [x.space_name, ...[x.space_size, x.space_used_size, x.physical_space_size].map((b) => Math.round(b / 1024))]);
        console.error(`heap spaces at stats ${m.id}: ${JSON.stringify(spaces)}`);
      }
      const counted = await commits?.();
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      send({
        type: "stats",
        id: m.id,
        stats: {
          pid: process.pid,
          cpuUserUs: cpu.user,
          cpuSystemUs: cpu.system,
          rss: mem.rss,
          heapUsed: mem.heapUsed,
          heapTotal: mem.heapTotal,
          external: mem.external,
          arrayBuffers: mem.arrayBuffers,
          connections: connections(),
          commits: counted,
          eventLoopDelayMs: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
        },
      });
      eld.reset();
    }
  });
  process.once("SIGTERM", stop);
  process.once("disconnect", stop);
  send({ type: "listening", port });
}

/**
 * Diagnostics (BENCH_ALLOC_PROFILE=<dir>): V8's sampling heap profiler from start-up, keeping the
 * objects later collected by minor and major GCs, i.e. everything allocated. Each stats request with
 * `gc` writes what was allocated since the previous one to `<dir>/alloc-<pid>-<stats id>.heapprofile`
 * (Chrome DevTools format) and starts a new window.
 */
function allocationProfiler(dir: string | undefined): ((id: number) => Promise<void>) | undefined {
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  const start = (): Promise<void> =>
    session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as object);
  const started = start();
  return async (id) => {
    await started;
    const { profile } = await session.post("HeapProfiler.stopSampling");
    writeFileSync(join(dir, `alloc-${process.pid}-${id}.heapprofile`), JSON.stringify(profile));
    await start();
  };
}
