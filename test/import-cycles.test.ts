/**
 * No import cycles in the sources (server/, cluster/, client/, protocol/), type-only imports
 * included: dpdm parses the TypeScript sources (not dist/) and resolves `.js` specifiers to `.ts`.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseCircular, parseDependencyTree } from "dpdm";
import { REPO_ROOT } from "./helpers/server-process.js";

const ROOTS = ["server", "cluster", "client", "protocol"].filter((d) => existsSync(join(REPO_ROOT, d)));

test(`no import cycle in ${ROOTS.join("/, ")}/`, { timeout: 60_000 }, async () => {
  const tree = await parseDependencyTree(
    ROOTS.map((d) => join(REPO_ROOT, d, "**/*.ts")),
    { context: REPO_ROOT, tsconfig: join(REPO_ROOT, "tsconfig.json"), transform: false },
  );
  const sources = Object.keys(tree).filter((f) => !f.startsWith("node_modules/"));
  assert.ok(sources.some((f) => f === "server/namespace/index.ts"), `the sources were not parsed: ${sources.slice(0, 5).join(", ")}`);
  assert.ok(sources.length >= 40, `only ${sources.length} files parsed`);
  assert.deepEqual(parseCircular(tree).map((cycle) => cycle.join(" -> ")), []);
});
