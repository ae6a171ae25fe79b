/**
 * Serves the browser build (scripts/build-web.mjs, output dist/web/): the demo page at `/` (and
 * `/index.html`), the self-contained `/standalone.html`, and `/assets/<file>` (ESM bundles, source
 * maps). Only flat file names of that directory are served; anything else is not ours.
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/web/ (this file runs from dist/server/). */
export const WEB_ROOT = fileURLToPath(new URL("../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
};

const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/** The file under `root` a GET path maps to, or undefined when the path is not a static one. */
export function staticFile(path: string, root = WEB_ROOT): string | undefined {
  if (path === "/" || path === "/index.html") return join(root, "index.html");
  if (path === "/standalone.html") return join(root, "standalone.html");
  const m = /^\/assets\/([^/]+)$/.exec(path);
  if (m && SAFE_NAME.test(m[1]!) && TYPES[extname(m[1]!)]) return join(root, "assets", m[1]!);
  return undefined;
}

/**
 * Answers `req` when its path is a static one (GET/HEAD) and returns true; returns false otherwise.
 * A missing build answers 404 with a hint to run `npm run build`.
 */
export function serveStatic(req: IncomingMessage, res: ServerResponse, path: string, root = WEB_ROOT): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const file = staticFile(path, root);
  if (!file) return false;
  readFile(file).then(
    (body) => {
      // index.html is small and names the bundles: always revalidate; bundles may be cached briefly.
      const cache = extname(file) === ".html" ? "no-cache" : "public, max-age=300";
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": body.length, "cache-control": cache });
      res.end(req.method === "HEAD" ? undefined : body);
    },
    () => {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end(`not found: ${path} (is the browser build missing? run \`npm run build\`)\n`);
    },
  );
  return true;
}
