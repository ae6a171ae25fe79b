/**
 * The client as a package a site installs (client/package.json): `npm pack` holds only the client
 * and the protocol module, every relative import stays inside the package, `@codemirror/state` is a
 * peer dependency, and a separate "site" that installs the tarball connects to a real server, edits
 * and shares one copy of `@codemirror/state` with the client.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { REPO_ROOT } from "./helpers/server-process.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";

let work: string;
let tarball: string;
let files: string[];
let srv: InProcessServer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "client-package-"));
  const pack = spawnSync("npm", ["pack", "--json", "--pack-destination", work], { cwd: join(REPO_ROOT, "client"), encoding: "utf8" });
  assert.equal(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info!.filename);
  files = info!.files.map((f) => f.path);
  srv = await startInProcessServer();
});

after(async () => {
  await srv?.close();
  if (work) await rm(work, { recursive: true, force: true });
  // what `npm pack` compiled (prepack) into client/dist/: no leftovers for other tests
  await rm(join(REPO_ROOT, "client", "dist"), { recursive: true, force: true });
});

test("the tarball holds the client and the protocol module only", { timeout: 60_000 }, () => {
  assert.ok(files.includes("dist/client/index.js"));
  assert.ok(files.includes("dist/client/index.d.ts"));
  assert.ok(files.includes("dist/protocol/wire.js"));
  assert.deepEqual(files.filter((f) => !/^(dist\/(client|protocol)\/[^/]+|package\.json|README\.md)$/.test(f)), []);
  assert.ok(!files.some((f) => /demo|browser/.test(f)), "the demo page is not part of the package");
});

test("installed in a site: one @codemirror/state, relative imports inside the package, connects and edits", { timeout: 120_000 }, async () => {
  const site = join(work, "site");
  const modules = join(site, "node_modules");
  await mkdir(join(modules, "@codemirror"), { recursive: true });
  assert.equal(spawnSync("tar", ["-xzf", tarball, "-C", work]).status, 0);
  const pkgDir = join(modules, "codespace-client");
  await rename(join(work, "package"), pkgDir);
  const manifest = JSON.parse(await readFile(join(pkgDir, "package.json"), "utf8")) as { peerDependencies: Record<string, string>; dependencies: Record<string, string> };
  assert.ok(manifest.peerDependencies["@codemirror/state"]);
  assert.equal(manifest.dependencies["@codemirror/state"], undefined, "@codemirror/state must be a peer dependency, not a dependency");
  // what npm would install from the registry: the package's dependencies and the site's own
  // @codemirror/state (the peer dependency)
  for (const dep of [...Object.keys(manifest.dependencies), "@codemirror/state"]) {
    await mkdir(dirname(join(modules, dep)), { recursive: true });
    await symlink(join(REPO_ROOT, "node_modules", dep), join(modules, dep), "dir");
  }
  // every relative import of the package resolves inside it
  const js: string[] = [];
  for (const sub of ["dist/client", "dist/protocol"]) {
    for (const f of await readdir(join(pkgDir, sub))) if (f.endsWith(".js")) js.push(join(pkgDir, sub, f));
  }
  for (const file of js) {
    for (const m of (await readFile(file, "utf8")).matchAll(/\bfrom\s*"(\.[^"]+)"/g)) {
      const target = resolve(dirname(file), m[1]!);
      assert.ok(!relative(pkgDir, target).startsWith(".." + sep), `${relative(pkgDir, file)} imports ${m[1]} outside the package`);
      assert.ok(existsSync(target), `${relative(pkgDir, file)} imports missing ${m[1]}`);
    }
  }
  await writeFile(
    join(site, "main.mjs"),
    `import { CodespaceClient, TMP_TOKEN_PREFIX } from "codespace-client";
import { EditorState } from "@codemirror/state";
const client = await CodespaceClient.connect(process.argv[2], TMP_TOKEN_PREFIX + process.argv[3], { transports: ["websocket"] });
client.applyLocal([{ from: 0, to: 0, insert: "from the site" }]);
await client.whenSynced();
console.log(JSON.stringify({ text: client.text, version: client.version, oneCopy: client.state instanceof EditorState }));
client.close();
`,
  );
  // asynchronously: the server runs in this process
  const run = await promisify(execFile)(process.execPath, ["main.mjs", srv.url, randomUUID()], { cwd: site, encoding: "utf8", timeout: 60_000 });
  assert.deepEqual(JSON.parse(run.stdout.trim()), { text: "from the site", version: 1, oneCopy: true });
});
