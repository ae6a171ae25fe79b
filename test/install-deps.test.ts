/**
 * The README's test command (`npm ci && npm test`) on a fresh Debian machine: `pretest` runs
 * scripts/install-test-deps.sh, which must install redis-server, haproxy and docker-compose with
 * apt-get when they are missing. Run here against a PATH holding none of them and a fake apt-get
 * that records its arguments and "installs" stub commands.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "./helpers/server-process.js";

const SCRIPT = join(REPO_ROOT, "scripts", "install-test-deps.sh");
const BASH = ["/bin/bash", "/usr/bin/bash"].find((p) => existsSync(p))!;

function runScript(path: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BASH, [SCRIPT], { env: { PATH: path }, cwd: REPO_ROOT }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

/** A bin directory with `id` reporting `uid` and an apt-get that logs and creates stub commands. */
async function fakeDebian(uid: number): Promise<{ bin: string; log: string; cleanup(): Promise<void> }> {
  const bin = await mkdtemp(join(tmpdir(), "fresh-debian-"));
  const log = join(bin, "apt-get.log");
  await writeFile(join(bin, "id"), `#!${BASH}\necho ${uid}\n`);
  await writeFile(
    join(bin, "apt-get"),
    `#!${BASH}\necho "$*" >> '${log}'\nif [ "$1" = install ]; then for a in "$@"; do case "$a" in -*|install) ;; *) printf '#!${BASH}\\n' > '${bin}'/"$a"; /bin/chmod +x '${bin}'/"$a";; esac; done; fi\n`,
  );
  await chmod(join(bin, "id"), 0o755);
  await chmod(join(bin, "apt-get"), 0o755);
  await symlink(BASH, join(bin, "bash"));
  return { bin, log, cleanup: () => rm(bin, { recursive: true, force: true }) };
}

test("npm test runs scripts/install-test-deps.sh first, and stops when it fails", async () => {
  // A `bash` that records its arguments and fails, first on PATH: `npm test` must call it with the
  // script before anything else, and run no test when it fails.
  const bin = await mkdtemp(join(tmpdir(), "fake-bash-"));
  const log = join(bin, "bash.log");
  try {
    await writeFile(join(bin, "bash"), `#!/bin/sh\necho "$*" >> '${log}'\nexit 3\n`);
    await chmod(join(bin, "bash"), 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
    delete env.NODE_TEST_CONTEXT;
    const code = await new Promise<number>((resolve) =>
      execFile("npm", ["test", "--silent"], { env, cwd: REPO_ROOT, timeout: 60_000 }, (err) => resolve(err ? Number((err as { code?: number }).code ?? 1) : 0)),
    );
    assert.notEqual(code, 0, "npm test should fail when the dependency script fails");
    const calls = (await readFile(log, "utf8")).trim().split("\n");
    assert.deepEqual(calls, ["scripts/install-test-deps.sh"]);
  } finally {
    await rm(bin, { recursive: true, force: true });
  }
});

test("on a fresh Debian machine (root) it apt-get installs redis-server, haproxy and docker-compose, then is a no-op", async () => {
  const env = await fakeDebian(0);
  try {
    const first = await runScript(env.bin);
    assert.equal(first.code, 0, first.stderr);
    const calls = (await readFile(env.log, "utf8")).trim().split("\n");
    assert.ok(calls.some((c) => /^update\b/.test(c)), calls.join("\n"));
    const install = calls.find((c) => /^install\b/.test(c));
    assert.ok(install, calls.join("\n"));
    for (const pkg of ["redis-server", "haproxy", "docker-compose"]) assert.ok(install.split(/\s+/).includes(pkg), `${pkg} not installed: ${install}`);

    const second = await runScript(env.bin);
    assert.equal(second.code, 0, second.stderr);
    assert.equal((await readFile(env.log, "utf8")).trim().split("\n").length, calls.length, "nothing to install the second time");
  } finally {
    await env.cleanup();
  }
});

test("without root it stops with the apt-get command to run", async () => {
  const env = await fakeDebian(1000);
  try {
    const res = await runScript(env.bin);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /apt-get install -y redis-server haproxy docker-compose/);
    assert.equal(existsSync(env.log), false, "apt-get must not run without root");
  } finally {
    await env.cleanup();
  }
});
