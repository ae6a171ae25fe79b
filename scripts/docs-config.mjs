#!/usr/bin/env node
// Rewrites the configuration tables of README.md and docs/operations.md (the text between the
// `config-table` marker comments) from server/config/variables.ts, through the compiled
// dist/server/config/docs-table.js: `npm run docs:config` builds first.
// `--check` writes nothing and exits 1 when a table is out of date (test/config.test.ts checks too).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { TABLE_FILES, withConfigTable } = await import(join(root, "dist", "server", "config", "docs-table.js"));
const check = process.argv.includes("--check");

let stale = 0;
for (const { path, flavour } of TABLE_FILES) {
  const file = join(root, path);
  const before = readFileSync(file, "utf8");
  const after = withConfigTable(before, flavour);
  if (after === before) continue;
  stale++;
  if (check) console.error(`docs-config: the configuration table in ${path} is out of date (npm run docs:config)`);
  else {
    writeFileSync(file, after);
    console.log(`docs-config: rewrote the configuration table in ${path}`);
  }
}
if (check && stale > 0) process.exit(1);
