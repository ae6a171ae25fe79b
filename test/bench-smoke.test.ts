/**
 * Keeps the benchmark harness from rotting: runs the smoke version of `npm run bench`
 * (`node dist/bench/run.js --smoke`, a few seconds) and checks that every target produced a result
 * with deliveries and no losses, that the idle-connection and trace-replay jobs ran, and that the
 * report renders; and that a bench stopped by SIGTERM leaves nothing running. No timing assertions:
 * this machine's speed is not under test here.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers/server-process.js";
import type { BenchResults } from "../bench/run.js";

test("bench smoke: every target and peer delivers every edit; idle, both trace replays and the document-size case run", { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "bench-smoke-"));
  try {
    const out = join(dir, "smoke.json");
    const md = join(dir, "smoke.md");
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "bench", "run.js"), "--smoke", "--out", out, "--md", md], {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("exit", (code) => resolve({ code, output }));
    });
    assert.equal(code, 0, `bench --smoke failed:\n${output}`);
    const r = JSON.parse(await readFile(out, "utf8")) as BenchResults;
    assert.deepEqual(r.failures, [], "jobs failed");
    assert.deepEqual(r.fanout.map((f) => f.target).sort(), ["a", "b", "c", "d", "e", "f"]);
    for (const f of r.fanout) {
      assert.ok(f.result.deliveries > 0, `${f.target}: no deliveries`);
      assert.equal(f.result.losses, 0, `${f.target}: ${f.result.losses} deliveries lost`);
      assert.equal(f.result.duplicates, 0, `${f.target}: duplicates`);
      assert.deepEqual(f.result.ackErrors, {}, `${f.target}: refused edits`);
      assert.ok(Number.isFinite(f.cpuSecPer1000), `${f.target}: no CPU figure`);
      assert.equal(f.result.outOfOrder, 0, `${f.target}: out of order`);
      assert.ok(f.result.latencyMs.count > 0);
      assert.ok(Number.isFinite(f.eventLoopDelayMs.max), `${f.target}: no event-loop delay`);
    }
    assert.equal(r.idle.length, 6);
    for (const i of r.idle) assert.equal(i.connectionsSeen, i.result.connections, `${i.target}: server counts ${i.connectionsSeen} connections`);
    assert.deepEqual(r.trace.map((t) => t.result.mode).sort(), ["composing", "keystrokes"]);
    for (const t of r.trace) assert.ok(t.result.converged, `${t.target} ${t.result.mode}: trace replay did not converge: ${t.result.errors.join("; ")}`);
    const keys = r.trace.find((t) => t.result.mode === "keystrokes")!.result;
    assert.equal(keys.serverUpdates, keys.transactions, "per-keystroke replay: one server update per transaction");
    // document-size case: every size and kind ran, the stored code is the writer's text, and a commit
    // sends its changes, not the document (a bound on bytes, not on time)
    assert.equal(r.docsize.length, r.config.docSizes.length * 4);
    for (const d of r.docsize) {
      assert.deepEqual(d.result.errors, [], `doc ${d.size} ${d.nonAscii}: ${d.result.errors.join("; ")}`);
      assert.ok(d.storedMatches, `doc ${d.size} nonAscii=${d.nonAscii} batch ${d.batch}: stored code differs from the writer's text`);
      if (d.batch === 1) assert.ok(d.redisInputBytesPerCommit < 4096, `doc ${d.size} nonAscii=${d.nonAscii}: ${d.redisInputBytesPerCommit} B per commit`);
    }
    const text = await readFile(md, "utf8");
    assert.match(text, /## Targets \(issue 13\)/);
    assert.match(text, /Hocuspocus/);
    assert.match(text, /## Commit cost against document size/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** True while `pid` is a live process (a zombie, killed but not yet reaped, counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("a bench stopped by SIGTERM leaves no redis-server or server process behind", { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "bench-stop-"));
  try {
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, "dist", "bench", "run.js"), "--smoke", "--targets", "b", "--no-trace", "--no-docsize", "--out", join(dir, "x.json"), "--md", join(dir, "x.md")],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // the fan-out line: redis-server and both server processes are up, the idle job comes next
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (/ b room /.test(out)) resolve();
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      void exited.then(() => reject(new Error(`bench exited before its first result:\n${out}`)));
    });
    const children = execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
    const names = children.map((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim());
    assert.ok(names.includes("redis-server"), `the bench's children: ${names.join(", ")}`);
    child.kill("SIGTERM");
    assert.equal(await exited, 128 + 15);
    // SIGKILLed as the bench exits; give the kernel a moment to finish them (bounded)
    for (let i = 0; i < 250 && children.some(alive); i++) await delay(20);
    assert.deepEqual(children.filter(alive).map((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim()), [], "children still running 5 s after the bench exited");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
