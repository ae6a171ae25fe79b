/**
 * A promise rejection nobody handled (server/process-guards.ts) is one error line, and the real
 * server process (`dist/server/main.js`) keeps serving instead of exiting. The rejection is made
 * by a module preloaded with `--import` when the test sends SIGUSR2, after the server is listening.
 */
import { after, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, SERVER_MAIN } from "./helpers/server-process.js";

let child: ChildProcess | undefined;
let dataDir: string | undefined;
after(async () => {
  child?.kill("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test("an unhandled rejection is logged as one line and the server keeps answering", { timeout: 30_000 }, async () => {
  dataDir = await mkdtemp(join(tmpdir(), "process-guards-"));
  const reject = "data:text/javascript,process.on('SIGUSR2',()=>{Promise.reject(new Error('boom from a library'))})";
  child = spawn(process.execPath, ["--import", reject, SERVER_MAIN], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "info" },
  });
  let out = "";
  let onListening: (port: number) => void = () => {};
  let onLogged: (line: string) => void = () => {};
  const listening = new Promise<number>((resolve) => (onListening = resolve));
  const logged = new Promise<string>((resolve) => (onLogged = resolve));
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    const port = /"port":(\d+).*"msg":"listening"/.exec(out)?.[1];
    if (port) onListening(Number(port));
    const line = out.split("\n").find((l) => l.includes("unhandled promise rejection"));
    if (line) onLogged(line);
  });
  const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
  const port = await Promise.race([listening, exited.then((code) => assert.fail(`the server exited (${code}):\n${out}`))]);
  child.kill("SIGUSR2");
  const line = await Promise.race([logged, exited.then((code) => assert.fail(`the server exited (${code}):\n${out}`))]);
  assert.match(line, /boom from a library/);
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(res.status, 200, "still serving after the rejection");
  assert.equal(child.exitCode, null, "still running");
});
