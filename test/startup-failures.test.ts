/**
 * Every startup failure of the real entry points (`dist/server/main.js`, `dist/cluster/main.js`) is
 * one clear line on stderr and exit code 1, never a stack trace: a bad setting, the port taken, a
 * HOST that is not this machine's, a DATA_DIR that cannot be a folder, cluster mode without Redis.
 */
import { after, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, SERVER_MAIN } from "./helpers/server-process.js";

const CLUSTER_MAIN = join(REPO_ROOT, "dist", "cluster", "main.js");
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** Runs an entry point with only `env` (plus PATH) and returns its exit code and output (bounded: 30 s). */
function run(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, LOG_LEVEL: "info", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} still running after 30 s\n${stdout}\n${stderr}`));
    }, 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function expectOneLine(script: string, env: Record<string, string>, line: RegExp): Promise<void> {
  const { code, stdout, stderr } = await run(script, env);
  const all = `${stdout}${stderr}`;
  assert.equal(code, 1, all);
  const lines = stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr:\n${stderr}`);
  assert.match(lines[0]!, line);
  assert.doesNotMatch(all, /^\s+at /m, "no stack trace");
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "startup-failures-"));
  dirs.push(d);
  return d;
}

test("server: a bad setting", async () => {
  await expectOneLine(SERVER_MAIN, { PORT: "eighty" }, /^codespace-server: invalid PORT="eighty": /);
});

test("server: the port is taken", async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
  const { port } = holder.address() as net.AddressInfo;
  try {
    await expectOneLine(SERVER_MAIN, { PORT: String(port), HOST: "127.0.0.1", DATA_DIR: await tempDir() },
      new RegExp(`^codespace-server: could not start: port ${port} is already in use on 127\\.0\\.0\\.1 \\(set PORT`));
  } finally {
    holder.close();
  }
});

test("server: HOST is not an address of this machine", async () => {
  await expectOneLine(SERVER_MAIN, { PORT: "0", HOST: "203.0.113.7", DATA_DIR: await tempDir() },
    /^codespace-server: could not start: HOST 203\.0\.113\.7 is not an address of this machine/);
});

test("server: DATA_DIR cannot be a folder (a file is in the way)", async () => {
  const file = join(await tempDir(), "a-file");
  await writeFile(file, "x");
  await expectOneLine(SERVER_MAIN, { PORT: "0", HOST: "127.0.0.1", DATA_DIR: join(file, "data") },
    /^codespace-server: could not start: DATA_DIR .*a-file\/data is not a writable folder: /);
  await expectOneLine(SERVER_MAIN, { PORT: "0", HOST: "127.0.0.1", DATA_DIR: file },
    /^codespace-server: could not start: DATA_DIR .*a-file is not a writable folder: /);
});

test("cluster: a bad setting", async () => {
  await expectOneLine(CLUSTER_MAIN, { WORKERS: "0", REDIS_URL: "redis://127.0.0.1:1" }, /^codespace-cluster: invalid WORKERS="0": /);
});

test("cluster: no REDIS_URL", async () => {
  await expectOneLine(CLUSTER_MAIN, { WORKERS: "1", PORT: "0" }, /^codespace-cluster: .*REDIS_URL/);
});
