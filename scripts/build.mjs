#!/usr/bin/env node
// The incremental build behind `npm start`, `npm run cluster`, `npm run build`, `npm test` and the
// install (`prepare`): TypeScript projects with `tsc -b` (tsconfig.json), then the browser bundle
// (scripts/build-web.mjs).
//
//   node scripts/build.mjs [--if-possible] [project ...]
//     project: protocol | client | server | cluster | test (default: all of them)
//     --if-possible: exit 0 without building when the sources or the compiler are absent
//                    (an install without dev dependencies, a Docker layer with package.json only)
//
// Fast path: dist/.build/<project>.stamp holds the time a build of it started; when no source file
// (protocol/ client/ server/ cluster/ test/ bench/, tsconfig files, package files) changed since,
// nothing runs. Otherwise the build runs under a lock (proper-lockfile on dist/.build), so two
// builds of one checkout never write the same files at once: the second waits, then finds the
// stamps current. The web bundle is rebuilt only when a client, protocol or bundler file changed,
// in place without deleting anything a running server serves (build-web.mjs).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stampDir = join(root, "dist", ".build");
const require = createRequire(import.meta.url);

/** Each project and the projects it references (tsconfig.json `references`), itself included. */
const CLOSURE = {
  protocol: ["protocol"],
  client: ["client", "protocol"],
  server: ["server", "protocol"],
  cluster: ["cluster", "server", "protocol"],
  test: ["test", "cluster", "server", "client", "protocol"],
};
const ALL = Object.keys(CLOSURE);
const TS_SOURCES = ["protocol", "client", "server", "cluster", "test", "bench", "tsconfig.json", "tsconfig.base.json", "package.json", "package-lock.json"];
const WEB_SOURCES = ["protocol", "client", "scripts/build-web.mjs", "package-lock.json"];
const SKIP = new Set(["node_modules", "dist", ".tmp", ".git"]);

/** Latest modification time (ms) under `paths` (files or directories, relative to the root). */
function newest(paths) {
  let max = 0;
  const visit = (p) => {
    let info;
    try {
      info = statSync(p);
    } catch {
      return;
    }
    max = Math.max(max, info.mtimeMs);
    if (!info.isDirectory()) return;
    for (const name of readdirSync(p)) if (!SKIP.has(name)) visit(join(p, name));
  };
  for (const p of paths) visit(join(root, p));
  return max;
}

const stampFile = (name) => join(stampDir, `${name}.stamp`);
function stampOf(name) {
  try {
    return Number(readFileSync(stampFile(name), "utf8")) || 0;
  } catch {
    return 0;
  }
}
function writeStamp(name, startedAt) {
  writeFileSync(stampFile(name), String(startedAt));
}

/** What is out of date: the projects to hand to `tsc -b`, and whether the web bundle is. */
function outdated(projects) {
  const ts = newest(TS_SOURCES);
  return {
    projects: projects.filter((p) => stampOf(p) < ts),
    web: stampOf("web") < newest(WEB_SOURCES) || !existsSync(join(root, "dist", "web", "index.html")),
  };
}

async function main(argv) {
  const ifPossible = argv.includes("--if-possible");
  const projects = argv.filter((a) => !a.startsWith("--"));
  for (const p of projects) if (!CLOSURE[p]) throw new Error(`unknown project ${p} (one of ${ALL.join(", ")})`);
  const wanted = projects.length ? projects : ALL;
  let tsc;
  try {
    tsc = require.resolve("typescript/bin/tsc");
  } catch {
    tsc = undefined;
  }
  if (ifPossible && (!tsc || !existsSync(join(root, "server", "tsconfig.json")))) {
    console.log("build: skipped (no sources or no TypeScript compiler here)");
    return;
  }
  if (!tsc) throw new Error("typescript is not installed: run `npm install`");
  if (!outdated(wanted).projects.length && !outdated(wanted).web) return;

  mkdirSync(stampDir, { recursive: true });
  const lockfile = require("proper-lockfile");
  const release = await lockfile.lock(stampDir, {
    lockfilePath: join(stampDir, "build.lock"),
    realpath: false,
    stale: 30_000,
    retries: { retries: 1200, factor: 1, minTimeout: 100, maxTimeout: 100 },
    onCompromised: (err) => console.error(`build: lock lost (${err.message}); another build may run at once`),
  });
  try {
    // Another build may have done the work while this one waited for the lock.
    const todo = outdated(wanted);
    const startedAt = Date.now();
    if (todo.projects.length) {
      const targets = projects.length ? todo.projects : ["."];
      const run = spawnSync(process.execPath, [tsc, "-b", ...targets], { cwd: root, stdio: "inherit" });
      if (run.status !== 0) throw new Error(`tsc -b ${targets.join(" ")} failed`);
      for (const p of todo.projects) for (const q of CLOSURE[p]) writeStamp(q, startedAt);
    }
    if (todo.web) {
      const { buildWeb } = await import(pathToFileURL(join(root, "scripts", "build-web.mjs")).href);
      await buildWeb();
      writeStamp("web", startedAt);
    }
  } finally {
    await release();
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`build: ${err.message}`);
  process.exit(1);
});
