/**
 * Keeps the benchmark harness from rotting: runs the smoke version of `npm run bench`
 * (`node dist/bench/run.js --smoke`, a few seconds) and checks that every target produced a result
 * with deliveries and no losses, that the idle-connection and trace-replay jobs ran, and that the
 * report renders. No timing assertions: this machine's speed is not under test here.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers/server-process.js";
import type { BenchResults } from "../bench/run.js";

test("bench smoke: every target delivers every edit, idle and trace jobs run", { timeout: 180_000 }, async () => {
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
    assert.deepEqual(r.fanout.map((f) => f.target).sort(), ["a", "b", "c", "d"]);
    for (const f of r.fanout) {
      assert.ok(f.result.deliveries > 0, `${f.target}: no deliveries`);
      assert.equal(f.result.losses, 0, `${f.target}: ${f.result.losses} deliveries lost`);
      assert.equal(f.result.duplicates, 0, `${f.target}: duplicates`);
      assert.deepEqual(f.result.ackErrors, {}, `${f.target}: refused edits`);
      assert.ok(Number.isFinite(f.cpuSecPer1000), `${f.target}: no CPU figure`);
      assert.ok(f.result.latencyMs.count > 0);
    }
    assert.equal(r.idle.length, 4);
    for (const i of r.idle) assert.equal(i.connectionsSeen, i.result.connections, `${i.target}: server counts ${i.connectionsSeen} connections`);
    assert.ok(r.trace.length > 0);
    for (const t of r.trace) assert.ok(t.result.converged, `${t.target}: trace replay did not converge: ${t.result.errors.join("; ")}`);
    assert.match(await readFile(md, "utf8"), /## Targets \(issue 4\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
