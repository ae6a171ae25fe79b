#!/usr/bin/env node
// Builds the browser side with esbuild into dist/web/ (not committed):
//   dist/web/index.html            the demo page the server serves at `/` (loads assets/demo.js)
//   dist/web/assets/codespace.js   ESM bundle: CodespaceClient, PresenceTracker, codespaceCollab,
//                                  EditorView, EditorState, basicSetup, javascript (client/browser.ts)
//   dist/web/assets/demo.js        the demo page's script (client/demo.ts), sharing chunks with it
//   dist/web/standalone.html       the demo as one self-contained file (inline script): the static
//                                  build, usable without this server's HTTP routes (even file://)
// Usage: node scripts/build-web.mjs   (also exported: buildWeb({ outdir?, minify? }))
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Builds everything; resolves to the output directory. */
export async function buildWeb({ outdir = join(root, "dist", "web"), minify = true } = {}) {
  const assets = join(outdir, "assets");
  await rm(outdir, { recursive: true, force: true });
  await mkdir(assets, { recursive: true });
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: "browser",
    target: ["es2022"],
    minify,
    legalComments: "linked",
    logLevel: "warning",
  };
  await build({
    ...common,
    entryPoints: { codespace: "client/browser.ts", demo: "client/demo.ts" },
    outdir: assets,
    format: "esm",
    splitting: true,
    sourcemap: true,
    chunkNames: "chunk-[hash]",
  });
  const standalone = await build({
    ...common,
    entryPoints: ["client/demo.ts"],
    format: "iife",
    write: false,
    legalComments: "none",
  });
  const html = await readFile(join(root, "client", "demo.html"), "utf8");
  await writeFile(join(outdir, "index.html"), html.replace("<!--SCRIPT-->", '<script type="module" src="assets/demo.js"></script>'));
  // "</script" cannot appear inside an inline script; esbuild escapes it in string literals already.
  const inline = standalone.outputFiles[0].text.replace(/<\/script/gi, "<\\/script");
  await writeFile(join(outdir, "standalone.html"), html.replace("<!--SCRIPT-->", () => `<script>\n${inline}</script>`));
  return outdir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  buildWeb().catch((err) => {
    console.error(`build-web: ${err.message}`);
    process.exit(1);
  });
}
