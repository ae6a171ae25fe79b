#!/usr/bin/env node
// Runs the compiled test suite: every `*.test.js` under dist/test/ (recursively), skipping
// `helpers/` directories, through `node --test`, one file at a time. Extra arguments go to
// `node --test` (e.g. `npm test -- --test-name-pattern=handshake`).
//
// Bounds: each test and hook has its own timeout (test/helpers/bounded.ts: 60 s unless it sets
// more); on Node 20 `--test-timeout` bounds each FILE, so it is given here as the file bound
// (FILE_TIMEOUT_MS, unless the arguments set one), and `--test-force-exit` ends a file once its
// tests are done even if a timed-out test left a socket open. The spec reporter prints the results,
// scripts/file-times-reporter.mjs the time each file took (unless the arguments choose a reporter).
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
const defaults = [
  ...(given("--test-timeout") ? [] : [`--test-timeout=${FILE_TIMEOUT_MS}`]),
  ...(given("--test-reporter")
    ? []
    : ["--test-reporter=spec", "--test-reporter-destination=stdout", `--test-reporter=${join(root, "scripts", "file-times-reporter.mjs")}`, "--test-reporter-destination=stdout"]),
];
const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-force-exit", ...defaults, ...args, ...files], {
  cwd: root,
  stdio: "inherit",
});
const forward = (sig) => child.kill(sig);
process.on("SIGINT", forward).on("SIGTERM", forward);
child.on("exit", (code, signal) => {
  if (signal) {
    process.off("SIGINT", forward).off("SIGTERM", forward);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
