#!/usr/bin/env node
// Builds the browser side with esbuild into dist/web/ (not committed):
//   dist/web/index.html            the demo page the server serves at `/` (loads assets/demo.js)
//   dist/web/assets/codespace.js   ESM bundle: CodespaceClient, PresenceTracker, codespaceCollab,
//                                  EditorView, EditorState, basicSetup, javascript (client/browser.ts)
//   dist/web/assets/demo.js        the demo page's script (client/demo.ts), sharing chunks with it
//   dist/web/standalone.html       the demo as one self-contained file (inline script): the static
//                                  build, usable without this server's HTTP routes (even file://)
//   dist/web/meta.json             esbuild's metafile of the ESM build (its `inputs`: every module
//                                  bundled; test/build-boundaries.test.ts checks no server module is)
// A running server may be serving dist/web while it is rebuilt: nothing is deleted first. Each file
// is written to a temporary name and renamed over the old one (atomic on one file system), hashed
// chunks before the entries that import them, pages last; unchanged files are left untouched.
// Chunks of older builds stay for an hour (a page loaded before the rebuild may still ask for them).
// Usage: node scripts/build-web.mjs   (also exported: buildWeb({ outdir?, minify? }))
import { build } from "esbuild";
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Chunks of earlier builds older than this are removed, ms. */
const STALE_CHUNK_MS = 60 * 60 * 1000;

/** Writes `contents` to `file` through a temporary file and a rename; skips identical contents. */
async function writeAtomic(file, contents) {
  const data = typeof contents === "string" ? Buffer.from(contents) : Buffer.from(contents);
  const old = await readFile(file).catch(() => undefined);
  if (old && old.equals(data)) return;
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Builds everything; resolves to `{ outdir, metafile }`. */
export async function buildWeb({ outdir = join(root, "dist", "web"), minify = true } = {}) {
  const assets = join(outdir, "assets");
  await mkdir(assets, { recursive: true });
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: "browser",
    target: ["es2022"],
    minify,
    legalComments: "linked",
    logLevel: "warning",
    write: false,
  };
  const esm = await build({
    ...common,
    entryPoints: { codespace: "client/browser.ts", demo: "client/demo.ts" },
    outdir: assets,
    format: "esm",
    splitting: true,
    sourcemap: true,
    chunkNames: "chunk-[hash]",
    metafile: true,
  });
  const standalone = await build({
    ...common,
    entryPoints: ["client/demo.ts"],
    format: "iife",
    legalComments: "none",
  });
  // Chunks (content-hashed names) first, then the entries importing them, then the pages.
  const rank = (path) => (basename(path).startsWith("chunk-") ? 0 : 1);
  const files = [...esm.outputFiles].sort((a, b) => rank(a.path) - rank(b.path));
  for (const f of files) await writeAtomic(f.path, f.contents);
  const html = await readFile(join(root, "client", "demo.html"), "utf8");
  // "</script" cannot appear inside an inline script; esbuild escapes it in string literals already.
  const inline = standalone.outputFiles[0].text.replace(/<\/script/gi, "<\\/script");
  await writeAtomic(join(outdir, "standalone.html"), html.replace("<!--SCRIPT-->", () => `<script>\n${inline}</script>`));
  await writeAtomic(join(outdir, "index.html"), html.replace("<!--SCRIPT-->", '<script type="module" src="assets/demo.js"></script>'));
  await writeAtomic(join(outdir, "meta.json"), JSON.stringify(esm.metafile, null, 1));
  const current = new Set(files.map((f) => basename(f.path)));
  for (const name of await readdir(assets)) {
    if (current.has(name) || !name.startsWith("chunk-")) continue;
    const file = join(assets, name);
    const info = await stat(file).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_CHUNK_MS) await unlink(file).catch(() => {});
  }
  return { outdir, metafile: esm.metafile };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  buildWeb().catch((err) => {
    console.error(`build-web: ${err.message}`);
    process.exit(1);
  });
}
