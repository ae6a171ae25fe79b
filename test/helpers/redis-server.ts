/**
 * Spawns a real `redis-server` for tests: 127.0.0.1, a free port, no persistence, its own temp dir,
 * keyspace notifications off by default (so the store's CONFIG SET is exercised). A server still
 * running when this process exits is killed with it (SIGKILL from an `exit` handler).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Kills the server, disconnects the clients made by `client()`, removes the temp dir. */
  stop(): Promise<void>;
  /** Kills the server and starts it again on the same port (data is lost). */
  restart(): Promise<void>;
  /** A new ioredis client to the server (default options: reconnects across `restart()`). */
  client(): Redis;
}

/** Resolves to a port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `redis-server` with `--port N --bind 127.0.0.1 --save "" --appendonly no` plus `opts.args`
 * (default `["--notify-keyspace-events", ""]`) on `opts.port` (default: a free one), and waits until it answers PING (at most ~10 s).
 * @throws Error when `redis-server` is not on PATH (install the Debian package `redis-server`) or
 *   when it exits or does not answer in time.
 */
export async function startRedis(opts: { args?: string[]; port?: number } = {}): Promise<RedisServerHandle> {
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), "redis-test-"));
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", dir, "--daemonize", "no",
    ...(opts.args ?? ["--notify-keyspace-events", ""]),
  ];
  const clients: Redis[] = [];
  let proc: ChildProcess | undefined = await launch(args, port);

  const kill = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGKILL");
    await exited;
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      for (const c of clients) c.disconnect();
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      proc = await launch(args, port);
    },
    client() {
      const c = new Redis(port, "127.0.0.1");
      c.on("error", () => {});
      clients.push(c);
      return c;
    },
  };
}

/** Child processes (redis-servers) to SIGKILL if they still run when this process exits. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** Kills `proc` (SIGKILL) if it still runs when this process exits, e.g. a bench stopped by a signal. */
export function killOnExit(proc: ChildProcess): void {
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
}

async function launch(args: string[], port: number): Promise<ChildProcess> {
  const proc = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  killOnExit(proc);
  let failure: Error | undefined;
  proc.on("error", (err: NodeJS.ErrnoException) => {
    failure =
      err.code === "ENOENT"
        ? new Error("redis-server is not on PATH; install the Debian package `redis-server` (apt-get install redis-server)")
        : err;
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  proc.on("exit", (code) => {
    failure ??= new Error(`redis-server exited with code ${code}: ${stderr.trim()}`);
  });
  for (let attempt = 0; attempt < 200; attempt++) {
    if (failure) throw failure;
    if (await ping(port)) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

/** True when something on 127.0.0.1:port answers `PING` with `+PONG`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let buf = "";
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}
