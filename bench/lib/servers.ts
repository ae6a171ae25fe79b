/**
 * Starting the bench's server children (our server wrapper, the baselines) with IPC, and sampling
 * their own CPU/memory accounting (plus redis-server's CPU from /proc, reported separately).
 */
import { fork, type ChildProcess } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import type { ChildMessage, ChildStats, ParentMessage } from "./child.js";
import { CONFIG_ENV_NAMES } from "../../server/config.js";

/** Server configuration variables (declared in server/config/variables.ts) never inherited from the caller's environment. */
const CONFIG_VARS = [...CONFIG_ENV_NAMES, "NODE_TEST_CONTEXT", "NODE_OPTIONS"];

export interface ServerChild {
  pid: number;
  port: number;
  url: string;
  stats(gc?: boolean): Promise<ChildStats>;
  /** Asks for a clean exit (IPC `stop`), SIGKILL after 10 s. */
  stop(): Promise<void>;
  output(): string;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});
// A bench stopped by a signal exits through `exit`, so that the handlers above and the
// redis-servers' (test/helpers/redis-server.ts killOnExit) leave nothing running.
for (const [signal, n] of [["SIGINT", 2], ["SIGTERM", 15]] as const) process.once(signal, () => process.exit(128 + n));

export function startChild(script: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<ServerChild> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of CONFIG_VARS) delete childEnv[k];
  Object.assign(childEnv, { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn" }, env);
  // diagnostics: BENCH_NODE_ARGS adds node flags (e.g. "--trace-gc") to every server child,
  // BENCH_CHILD_LOG appends every child's whole output to that file
  const extra = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const logFile = process.env.BENCH_CHILD_LOG;
  const child = fork(script, [], { env: childEnv, execArgv: ["--expose-gc", ...extra, ...nodeArgs], stdio: ["ignore", "pipe", "pipe", "ipc"] });
  live.add(child);
  let out = "";
  const append = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
    if (logFile) appendFileSync(logFile, `[${child.pid}] ${d.toString()}`);
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<void>((r) => child.once("exit", () => (live.delete(child), r())));
  let seq = 0;
  const waiting = new Map<number, (s: ChildStats) => void>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill("SIGKILL"), reject(new Error(`${script} not listening after 20 s\n${out}`))), 20_000);
    void exited.then(() => reject(new Error(`${script} exited before listening\n${out}`)));
    child.on("message", (m: ChildMessage) => {
      if (m.type === "stats") {
        waiting.get(m.id)?.(m.stats);
        waiting.delete(m.id);
        return;
      }
      clearTimeout(timer);
      resolve({
        pid: child.pid!,
        port: m.port,
        url: `http://127.0.0.1:${m.port}`,
        output: () => out,
        stats: (gc = false) =>
          new Promise((res, rej) => {
            if (child.exitCode !== null || child.signalCode !== null) return rej(new Error(`${script} has exited\n${out}`));
            const id = ++seq;
            waiting.set(id, res);
            child.send({ type: "stats", id, gc } satisfies ParentMessage);
          }),
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          if (child.connected) child.send({ type: "stop" } satisfies ParentMessage);
          else child.kill("SIGTERM");
          const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

/** utime + stime of any process from /proc/<pid>/stat, seconds (0 when unreadable). */
export function procCpuSec(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) -> indexes 11 and 12 here
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
