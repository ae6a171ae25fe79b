#!/usr/bin/env node
// Runs the compiled test suite: every `*.test.js` under dist/test/ (recursively), skipping
// `helpers/` directories, each file in its own `node --test`, one after the other; then a summary
// of each file's wall time, slowest first. Extra arguments go to each `node --test`
// (e.g. `npm test -- --test-name-pattern=handshake`).
//
// Bounds: each test and hook has its own timeout (test/helpers/bounded.ts: 60 s unless it sets
// more); on Node 20 `--test-timeout` bounds each FILE, so it is given here as the file bound
// (FILE_TIMEOUT_MS, unless the arguments set one), and `--test-force-exit` ends a file once its
// tests are done even if a timed-out test left a socket open. The spec reporter prints the results
// (unless the arguments choose a reporter).
//
// Why not `node --test dist/test/`: on Node 20 a directory argument also runs every .js file under a
// `test/` directory (dist/test/helpers/*.js included), and Node 22+ treats the argument as a glob.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const testDir = join(root, "dist", "test");

function collect(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
  const files = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "helpers" && e.name !== "node_modules") files.push(...collect(p));
    } else if (e.isFile() && e.name.endsWith(".test.js")) {
      files.push(p);
    }
  }
  return files;
}

const files = collect(testDir)
  .map((f) => relative(root, f))
  .sort();
if (files.length === 0) {
  console.error(`run-tests: no *.test.js files under ${relative(root, testDir) || "."}; did the build run?`);
  process.exit(1);
}

/** Most time one test file may take, milliseconds. */
const FILE_TIMEOUT_MS = 300_000;
const args = process.argv.slice(2);
const given = (flag) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
const nodeArgs = [
  "--test",
  "--test-force-exit",
  ...(given("--test-timeout") ? [] : [`--test-timeout=${FILE_TIMEOUT_MS}`]),
  ...(given("--test-reporter") ? [] : ["--test-reporter=spec"]),
  ...args,
];

/** Totals over every file, from the `ℹ pass N` ... lines of each file's closing summary (spec reporter). */
const totals = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };

/**
 * Runs one file in its own `node --test`; resolves with its exit code and wall time. Its output goes
 * through unchanged; the counts of its closing summary are added to `totals`.
 */
function runFile(file) {
  const started = Date.now();
  return new Promise((resolve) => {
    current = spawn(process.execPath, [...nodeArgs, file], { cwd: root, stdio: ["inherit", "pipe", "inherit"] });
    let tail = "";
    const counts = {};
    current.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      const lines = (tail + chunk.toString()).split("\n");
      tail = lines.pop();
      for (const line of lines) {
        const m = /^\u2139 (pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line.trim());
        if (m) counts[m[1]] = Number(m[2]); // the last summary of the file wins
      }
    });
    current.on("exit", (code, signal) => {
      for (const k of Object.keys(totals)) totals[k] += counts[k] ?? 0;
      // a file that failed without counting a failure (a crash, a timeout of the whole file) is one
      if ((code ?? 1) !== 0 && !counts.fail && !counts.cancelled) totals.fail += 1;
      resolve({ file, code: code ?? 1, signal, ms: Date.now() - started });
    });
  });
}

let current;
let interrupted;
const forward = (sig) => {
  interrupted = sig;
  current?.kill(sig);
};
process.on("SIGINT", forward).on("SIGTERM", forward);

const started = Date.now();
const results = [];
for (const file of files) {
  if (interrupted) break;
  results.push(await runFile(file));
}
if (interrupted) {
  process.off("SIGINT", forward).off("SIGTERM", forward);
  process.kill(process.pid, interrupted);
}

const failed = results.filter((r) => r.code !== 0);
const seconds = (ms) => `${(ms / 1000).toFixed(1).padStart(6)} s`;
console.log(`\nrun-tests: ${results.length} files in ${seconds(Date.now() - started).trim()}, slowest first:`);
for (const r of [...results].sort((x, y) => y.ms - x.ms)) console.log(`${seconds(r.ms)}  ${r.file}${r.code !== 0 ? "  FAILED" : ""}`);
if (failed.length > 0) console.log(`\nrun-tests: ${failed.length} file(s) failed: ${failed.map((r) => r.file).join(", ")}`);
// the closing line CI reads: every test of every file (cancelled ones count as failed)
console.log(`\ntests: ${totals.pass} passed, ${totals.fail + totals.cancelled} failed, ${totals.skipped + totals.todo} skipped`);
if (failed.length > 0) process.exit(1);
