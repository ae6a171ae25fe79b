/**
 * Spawns the real server (`node dist/server/main.js`) as a child process for tests.
 *
 * The child gets `PORT=0 HOST=127.0.0.1 LOG_LEVEL=info` plus the caller's `env`, on top of this
 * process's environment minus the server's own configuration variables (so a developer's REDIS_URL
 * or API_BASE_URL never leaks into a test). It is ready once it logs the pino line
 * `{"msg":"listening","port":<n>}` on stdout.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { CONFIG_ENV_NAMES } from "../../server/config.js";

/** Repository root (this file runs from `<root>/dist/test/helpers/`). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The compiled entry point. */
export const SERVER_MAIN = join(REPO_ROOT, "dist", "server", "main.js");

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit. If the process is still alive after
   * `timeoutMs` (default 15000) it gets SIGKILL, which then shows in the result.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** Settles (never rejects) when the process exits. */
  readonly exited: Promise<ExitStatus>;
  /** Everything the process wrote so far, stdout and stderr interleaved as received (tail kept). */
  output(): string;
}

export interface StartOptions {
  /** Give up (SIGKILL, reject with the output) if not listening by then. Default 15000 ms. */
  timeoutMs?: number;
  /** Entry point to run instead of `dist/server/main.js` (absolute, or relative to the repo root). */
  script?: string;
  /**
   * Resolve only once `/readyz` answers 200 (Redis connected). Default: true when `REDIS_URL` is
   * set (the process listens before Redis answers), false otherwise.
   */
  waitReady?: boolean;
  /** Extra node arguments before the script (e.g. `--inspect`). */
  nodeArgs?: string[];
}

/** Server configuration variables (declared in server/config/variables.ts) never inherited from the test's environment. */
const CONFIG_VARS = [
  ...CONFIG_ENV_NAMES,
  // set by `node --test` for its own children; irrelevant to the server
  "NODE_TEST_CONTEXT",
];

const MAX_OUTPUT_CHARS = 2_000_000;

/** Children still running, killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
}

/** Polls `${url}/readyz` every 50 ms until it answers 200 or `stop()` is true. */
async function waitReadyz(url: string, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const status = await fetch(`${url}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the server; resolves once it listens, rejects (with its output) if it exits or times out first. */
export function startServerProcess(env: Record<string, string> = {}, opts: StartOptions = {}): Promise<ServerProcess> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of CONFIG_VARS) delete childEnv[k];
  Object.assign(childEnv, { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" }, env);
  const ownDataDir = env.DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), "codespace-data-")) : undefined;
  if (ownDataDir) childEnv.DATA_DIR = ownDataDir;

  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script ?? SERVER_MAIN], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  installExitHook();
  live.add(child);

  let out = "";
  const append = (s: string): void => {
    out += s;
    if (out.length > MAX_OUTPUT_CHARS) out = out.slice(out.length - MAX_OUTPUT_CHARS);
  };
  const output = (): string => out;

  // `exited` settles once the process has exited and its output is read: on `close`, or 500 ms
  // after `exit` if something else (a worker) still holds the pipes open.
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    let closeTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (closeTimer) clearTimeout(closeTimer);
      live.delete(child);
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
      resolve(exitStatus!);
    };
    child.once("exit", (code, signal) => {
      exitStatus = { code, signal };
      closeTimer = setTimeout(finish, 500);
    });
    child.once("close", (code, signal) => {
      exitStatus ??= { code, signal };
      finish();
    });
  });

  const kill = async (): Promise<void> => {
    if (!exitStatus) child.kill("SIGKILL");
    await exited;
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM", stopTimeoutMs = 15_000): Promise<ExitStatus> => {
    if (exitStatus) return exitStatus;
    child.kill(signal);
    const t = setTimeout(() => {
      if (!exitStatus) {
        append(`\n[server-process] still alive ${stopTimeoutMs} ms after ${signal}: SIGKILL\n`);
        child.kill("SIGKILL");
      }
    }, stopTimeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(t);
    }
  };

  return new Promise<ServerProcess>((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`server process ${why}\n--- output ---\n${out}`));
    };

    const timer = setTimeout(() => {
      fail(`not listening after ${timeoutMs} ms (killed)`);
      child.kill("SIGKILL");
    }, timeoutMs);

    child.once("error", (err) => fail(`failed to start: ${err.message}`));
    void exited.then((s) => fail(`exited before listening (code ${s.code}, signal ${s.signal})`));

    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => append(chunk));

    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on("line", (line) => {
      append(line + "\n");
      if (settled) return;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof rec !== "object" || rec === null) return;
      const { msg, port } = rec as { msg?: unknown; port?: unknown };
      if (msg !== "listening" || typeof port !== "number") return;
      const proc: ServerProcess = { url: `http://127.0.0.1:${port}`, port, pid: child.pid!, stop, kill, exited, output };
      // with Redis the port opens before Redis answers: wait for /readyz 200 unless told not to
      const ready = (opts.waitReady ?? childEnv.REDIS_URL !== undefined) ? waitReadyz(proc.url, () => settled) : Promise.resolve();
      void ready.then(() => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(proc);
      });
    });
  });
}
