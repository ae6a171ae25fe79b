#!/usr/bin/env node
// Runs the compiled test suite: every `*.test.js` under dist/test/ (recursively), skipping
// `helpers/` directories, through `node --test`. Extra arguments go to `node --test`
// (e.g. `npm test -- --test-name-pattern=handshake`).
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

const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...process.argv.slice(2), ...files], {
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
