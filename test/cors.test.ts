/**
 * CORS (CORS_ORIGIN): a credentialed polling handshake from an allowed origin gets that origin
 * echoed with `access-control-allow-credentials: true` (preflight too); any other origin gets no
 * `access-control-allow-origin` at all. In-process server, raw HTTP requests.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";

const ALLOWED = "https://app.example.com";
let srv: CodespaceServer;
let base: string;

before(async () => {
  let url: string;
  ({ server: srv, url } = await startInProcessServer({ CORS_ORIGIN: `${ALLOWED}, https://other-allowed.example.com` }));
  base = `${url}/socket.io/?EIO=4&transport=polling`;
});
after(async () => srv?.close());

function handshake(origin: string): Promise<Response> {
  return fetch(`${base}&t=${Date.now()}`, { headers: { origin, cookie: "session=abc" }, credentials: "include" });
}

test("an allowed origin is echoed with credentials on the polling handshake and on the preflight", async () => {
  const res = await handshake(ALLOWED);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
  assert.equal(res.headers.get("access-control-allow-credentials"), "true");
  assert.match(await res.text(), /"sid":/);
  const pre = await fetch(base, { method: "OPTIONS", headers: { origin: ALLOWED, "access-control-request-method": "POST" } });
  assert.ok(pre.status === 204 || pre.status === 200);
  assert.equal(pre.headers.get("access-control-allow-origin"), ALLOWED);
  assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
});

test("another origin gets no access-control-allow-origin (the browser blocks the response)", async () => {
  for (const origin of ["https://evil.example.com", "https://app.example.com.evil.example", "null"]) {
    const res = await handshake(origin);
    await res.arrayBuffer();
    assert.equal(res.headers.get("access-control-allow-origin"), null, origin);
    const pre = await fetch(base, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
    await pre.arrayBuffer();
    assert.equal(pre.headers.get("access-control-allow-origin"), null, `preflight ${origin}`);
  }
});

test("CORS_ORIGIN=null admits a page opened from disk (Origin: null), and only that", async () => {
  const { server, url } = await startInProcessServer({ CORS_ORIGIN: "null" });
  try {
    const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling&t=${Date.now()}`, { headers: { origin: "null" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "null");
    assert.match(await res.text(), /"sid":/);
    const other = await fetch(`${url}/socket.io/?EIO=4&transport=polling&t=${Date.now()}`, { headers: { origin: ALLOWED } });
    await other.arrayBuffer();
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  } finally {
    await server.close();
  }
});
