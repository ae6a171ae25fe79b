/**
 * The suite's bound (test/helpers/bounded.ts with scripts/run-tests.mjs's `--test-force-exit`): a
 * test waiting forever for an event that never comes, with a socket left open, fails at its
 * timeout, the tests after it still run, and the file ends instead of hanging.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const BOUNDED = pathToFileURL(join(import.meta.dirname, "helpers", "bounded.js")).href;

test("a test waiting for a lost event fails at its timeout; the file goes on and ends", async () => {
  const dir = await mkdtemp(join(tmpdir(), "bounded-"));
  let child: ChildProcess | undefined;
  try {
    const file = join(dir, "lost-event.test.mjs");
    await writeFile(
      file,
      `import { test } from ${JSON.stringify(BOUNDED)};
import { createServer } from "node:net";
test("waits for a broadcast that never comes", async () => {
  const server = createServer().listen(0, "127.0.0.1"); // a handle that keeps the process alive
  await new Promise(() => {});
});
test("the next test still runs", () => {});
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TEST_TIMEOUT_MS: "500" };
    delete env.NODE_TEST_CONTEXT;
    child = spawn(process.execPath, ["--test", "--test-force-exit", "--test-reporter=tap", file], { env });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    child.stderr!.on("data", (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((resolve) => child!.on("exit", resolve));
    assert.equal(code, 1, out);
    assert.match(out, /not ok 1 - waits for a broadcast that never comes[\s\S]*test timed out after 500ms/);
    assert.match(out, /^ok 2 - the next test still runs/m);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

test("every test file takes test(), describe() and hooks from the bounded wrapper, not node:test", async () => {
  const { readdir, readFile } = await import("node:fs/promises");
  const { REPO_ROOT } = await import("./helpers/server-process.js");
  const dir = join(REPO_ROOT, "test");
  const files = (await readdir(dir)).filter((f) => f.endsWith(".test.ts"));
  assert.ok(files.length > 20, `test sources found in ${dir}`);
  const unbounded: string[] = [];
  for (const f of files) {
    const source = await readFile(join(dir, f), "utf8");
    // A value import of node:test (type-only imports are fine) would register unbounded tests.
    if (/^import\s+(?!type\b)[^;]*from\s+"node:test"/m.test(source)) unbounded.push(f);
  }
  assert.deepEqual(unbounded, [], "these files import node:test directly; use ./helpers/bounded.js");
});
