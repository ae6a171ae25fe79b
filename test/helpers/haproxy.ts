/**
 * Runs the real HAProxy (Debian package `haproxy`, /usr/sbin/haproxy) for tests, with a config
 * DERIVED from the repository's haproxy.cfg: only the frontend's `bind` and the backend `server`
 * addresses are rewritten (plus optional `timeout` overrides); every other line is kept, so the tests
 * exercise the shipped stickiness, health checks, timeouts and retries.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis-server.js";
import { REPO_ROOT } from "./server-process.js";

export const HAPROXY_CFG = join(REPO_ROOT, "haproxy.cfg");

/** The haproxy binary: on PATH, or Debian's /usr/sbin/haproxy when sbin is not on PATH. */
export function haproxyBin(): string {
  return existsSync("/usr/sbin/haproxy") ? "/usr/sbin/haproxy" : "haproxy";
}

/** `server <name> <address>` lines of haproxy.cfg: name and host:port, in order. */
export function configuredServers(text = readFileSync(HAPROXY_CFG, "utf8")): { name: string; address: string }[] {
  return [...text.matchAll(/^\s*server\s+(\S+)\s+(\S+)/gm)].map((m) => ({ name: m[1]!, address: m[2]! }));
}

export interface DeriveOptions {
  /** Port the frontend binds on 127.0.0.1. */
  bindPort: number;
  /** New `host:port` of each configured server, in the order of haproxy.cfg. */
  servers: string[];
  /** Replacement values for `timeout <name>` lines of `defaults`, e.g. `{ client: "1s" }`. */
  timeouts?: Record<string, string>;
}

/**
 * haproxy.cfg with `bind :8888` -> `bind 127.0.0.1:<bindPort>`, each `server` address replaced
 * (Docker's DNS resolvers dropped from `default-server`: the addresses are IPs), and the given
 * timeouts replaced. Throws if the file does not have the expected shape.
 */
export function deriveConfig(opts: DeriveOptions, text = readFileSync(HAPROXY_CFG, "utf8")): string {
  let out = text;
  const binds = out.match(/^(\s*)bind\s+:8888\b/gm) ?? [];
  if (binds.length !== 1) throw new Error(`haproxy.cfg: expected one "bind :8888", found ${binds.length}`);
  out = out.replace(/^(\s*)bind\s+:8888\b/m, `$1bind 127.0.0.1:${opts.bindPort}`);
  const servers = configuredServers(out);
  if (servers.length !== opts.servers.length) {
    throw new Error(`haproxy.cfg has ${servers.length} servers, the test gives ${opts.servers.length}`);
  }
  let i = 0;
  out = out.replace(/^(\s*server\s+\S+\s+)(\S+)/gm, (_m, head: string) => head + opts.servers[i++]);
  out = out.replace(/^(\s*default-server\b.*?)\s+resolvers\s+\S+/m, "$1");
  for (const [name, value] of Object.entries(opts.timeouts ?? {})) {
    const re = new RegExp(`^(\\s*timeout\\s+${name}\\s+)\\S+`, "m");
    if (!re.test(out)) throw new Error(`haproxy.cfg has no "timeout ${name}"`);
    out = out.replace(re, `$1${value}`);
  }
  return out;
}

export interface HaproxyHandle {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Everything haproxy wrote (its logs go to stdout: one `option httplog` line per request). */
  output(): string;
  /** HTTP statuses of the logged requests, in order. */
  statuses(): number[];
  stop(): Promise<void>;
}

/**
 * Starts haproxy in the foreground (`-db`) with `deriveConfig(opts)` and waits until the frontend
 * accepts connections and every backend server passed its first health check (bounded, 15 s).
 */
export async function startHaproxy(opts: Omit<DeriveOptions, "bindPort">): Promise<HaproxyHandle> {
  const bindPort = await freePort();
  const cfg = deriveConfig({ ...opts, bindPort });
  const dir = await mkdtemp(join(tmpdir(), "haproxy-test-"));
  const file = join(dir, "haproxy.cfg");
  await writeFile(file, cfg);
  const check = spawn(haproxyBin(), ["-c", "-q", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
  let checkOut = "";
  check.stdout.on("data", (d: Buffer) => (checkOut += d));
  check.stderr.on("data", (d: Buffer) => (checkOut += d));
  const checkCode = await new Promise<number | null>((resolve) => {
    check.on("error", () => resolve(-1));
    check.on("exit", (code) => resolve(code));
  });
  if (checkCode !== 0) throw new Error(`haproxy -c refused the derived config:\n${checkOut}\n---\n${cfg}`);

  const proc: ChildProcess = spawn(haproxyBin(), ["-db", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d));
  proc.stderr!.on("data", (d: Buffer) => (out += d));
  let exited = false;
  const exit = new Promise<void>((resolve) => proc.once("exit", () => ((exited = true), resolve())));
  process.once("exit", () => proc.kill("SIGKILL"));

  const url = `http://127.0.0.1:${bindPort}`;
  const deadline = Date.now() + 15_000;
  // Ready when the frontend answers /readyz (a health-checked request through the backend).
  for (;;) {
    if (exited) throw new Error(`haproxy exited:\n${out}`);
    const ok = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`haproxy not serving /readyz within 15 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    port: bindPort,
    output: () => out,
    statuses: () => [...out.matchAll(/ -?\d+\/-?\d+\/-?\d+\/-?\d+\/\+?-?\d+ (\d{3}) /g)].map((m) => Number(m[1])),
    async stop() {
      if (!exited) proc.kill("SIGTERM");
      await exit;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
