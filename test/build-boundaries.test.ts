/**
 * The boundaries between the parts of the repository (tsconfig.json project references): the
 * browser bundle holds no server module, and each TypeScript project sees only the files and the
 * global types it is meant to (protocol: neither DOM nor Node; client: DOM, no Node; server and
 * cluster: Node, no DOM).
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./helpers/server-process.js";

interface Metafile {
  inputs: Record<string, unknown>;
}

/** The files `tsc -p <project> --listFilesOnly` compiles, relative to the repository root. */
function programFiles(project: string): string[] {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", join(REPO_ROOT, project), "--listFilesOnly"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  return run.stdout
    .split("\n")
    .filter(Boolean)
    .map((f) => relative(REPO_ROOT, f).split(sep).join("/"));
}

test("the browser bundle contains client, protocol and library modules only (esbuild metafile)", { timeout: 120_000 }, async () => {
  const { buildWeb } = (await import(pathToFileURL(join(REPO_ROOT, "scripts", "build-web.mjs")).href)) as {
    buildWeb(opts: { outdir: string }): Promise<{ metafile: Metafile }>;
  };
  const outdir = await mkdtemp(join(tmpdir(), "web-boundaries-"));
  try {
    const { metafile } = await buildWeb({ outdir });
    const inputs = Object.keys(metafile.inputs);
    assert.ok(inputs.includes("client/codespace-client.ts"), "the client is not in the bundle: wrong metafile?");
    assert.ok(inputs.some((i) => i.startsWith("protocol/")), "the protocol is not in the bundle");
    const ours = inputs.filter((i) => !i.startsWith("node_modules/"));
    assert.deepEqual(ours.filter((i) => !/^(client|protocol)\//.test(i)), []);
    // the written metafile is the same list (dist/web/meta.json is what a reviewer reads)
    const written = JSON.parse(await readFile(join(outdir, "meta.json"), "utf8")) as Metafile;
    assert.deepEqual(Object.keys(written.inputs).sort(), [...inputs].sort());
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
});

test("protocol: its own files only, neither DOM nor Node types", { timeout: 60_000 }, () => {
  const files = programFiles("protocol");
  const ours = files.filter((f) => !f.startsWith("node_modules/"));
  assert.ok(ours.includes("protocol/wire.ts"));
  assert.deepEqual(ours.filter((f) => !f.startsWith("protocol/")), []);
  assert.deepEqual(files.filter((f) => f.includes("@types/node") || /lib\.dom/.test(f)), []);
});

test("client: client files and the protocol's declarations, DOM types, no Node types", { timeout: 60_000 }, () => {
  const files = programFiles("client");
  const ours = files.filter((f) => !f.startsWith("node_modules/"));
  assert.ok(ours.includes("client/codespace-client.ts"));
  assert.deepEqual(ours.filter((f) => !f.startsWith("client/") && !/^dist\/protocol\/.*\.d\.ts$/.test(f)), []);
  assert.ok(files.some((f) => /lib\.dom\.d\.ts$/.test(f)));
  assert.deepEqual(files.filter((f) => f.includes("@types/node")), []);
});

test("server and cluster: Node types, no DOM, no client file", { timeout: 60_000 }, () => {
  for (const project of ["server", "cluster"]) {
    const files = programFiles(project);
    const ours = files.filter((f) => !f.startsWith("node_modules/"));
    assert.ok(ours.some((f) => f.startsWith(`${project}/`)));
    assert.deepEqual(ours.filter((f) => !f.startsWith(`${project}/`) && !/^dist\/(protocol|server)\/.*\.d\.ts$/.test(f)), [], project);
    assert.ok(files.some((f) => f.includes("@types/node")), project);
    assert.deepEqual(files.filter((f) => /lib\.dom/.test(f)), [], project);
  }
});
