/**
 * Local share-token verification (SHARE_TOKEN_SECRET, server/auth/share-tokens.ts): tokens made by
 * an independent implementation of the site's format (Python `cryptography`, plus a fixed vector
 * computed once the same way) are admitted or refused without calling the site API; tokens not in
 * the format still go to the API (a real stub HTTP server). In-process server, embedded store.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { pythonShareToken } from "./helpers/share-token.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";

const SECRET = "site SECRET_KEY for tests: ünïcode too";
/**
 * Fixed vectors: Python `cryptography` AESGCM, key SHA-256("fixed-vector-SECRET_KEY"), nonce
 * 00 01 .. 0b, plaintexts "6f1c2b9e-4a0d-4c55-9d1e-2b7a3c4d5e6f:4102444800:edit" (year 2100) and
 * "...:1000000000:view_only" (2001, expired).
 */
const FIXED = {
  secret: "fixed-vector-SECRET_KEY",
  codespace: "6f1c2b9e-4a0d-4c55-9d1e-2b7a3c4d5e6f",
  edit: "AAECAwQFBgcICQoLiPW5Fq4K7zExBMoMH_xSuimhfWdzFvku5wjriL4NtUxJ1M4XQankPm7kDONBzvFRuPZcxhSb0NgtdJ5S7xpIvnyLQy4=",
  expired: "AAECAwQFBgcICQoLiPW5Fq4K7zExBMoMH_xSuimhfWdzFvku5wjriL4NtUxJ1M4XQazlPmzgCOdJzvFRq_tQxW7dTMO9OMqH6YVvSXK6IjJVQgqUmg==",
};

let stub: StubApi;
let srv: InProcessServer;
let fixedSrv: InProcessServer;

before(async () => {
  stub = await startStubApi();
  srv = await startInProcessServer({ SHARE_TOKEN_SECRET: SECRET, API_BASE_URL: stub.baseUrl, API_TIMEOUT_MS: "3000" });
  fixedSrv = await startInProcessServer({ SHARE_TOKEN_SECRET: FIXED.secret });
});
after(async () => {
  await srv?.close();
  await fixedSrv?.close();
  await stub?.close();
});

async function metric(s: CodespaceServer, name: string, labels: Record<string, string>): Promise<number> {
  const m = await s.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value ?? 0;
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

test("valid edit and view_only tokens (made by Python) are admitted with their codespace and mode, with no API call", { timeout: 30_000 }, async () => {
  const cs = randomUUID();
  const calls = stub.calls.length;
  for (const mode of ["edit", "view_only"] as const) {
    const token = pythonShareToken(SECRET, `${cs}:${inAnHour()}:${mode}`);
    const { socket, connected } = await connectSocket(srv.url, token);
    socket.close();
    assert.equal(connected.codespace, cs);
    assert.equal(connected.mode, mode);
  }
  assert.equal(stub.calls.length, calls, "the site API was called");
  assert.equal(await metric(srv.server, "codespace_auth_checks_total", { outcome: "share_token" }), 2);
});

test("the fixed vector is admitted (edit); its expired twin is refused with token_expired", { timeout: 30_000 }, async () => {
  const { socket, connected } = await connectSocket(fixedSrv.url, FIXED.edit);
  socket.close();
  assert.equal(connected.codespace, FIXED.codespace);
  assert.equal(connected.mode, "edit");
  // without padding too (URL-safe base64 with or without '=')
  const unpadded = await connectSocket(fixedSrv.url, FIXED.edit.replace(/=+$/, ""));
  unpadded.socket.close();
  assert.equal((await expectConnectError(fixedSrv.url, FIXED.expired)).data?.code, "token_expired");
});

test("expired, tampered, wrong-key and undecodable tokens are refused with their codes, without an API call", { timeout: 30_000 }, async () => {
  const cs = randomUUID();
  const calls = stub.calls.length;
  const expired = pythonShareToken(SECRET, `${cs}:${Math.floor(Date.now() / 1000) - 5}:edit`);
  assert.equal((await expectConnectError(srv.url, expired)).data?.code, "token_expired");

  const valid = pythonShareToken(SECRET, `${cs}:${inAnHour()}:edit`);
  const raw = Buffer.from(valid, "base64url");
  raw[20] = raw[20]! ^ 0x01; // one ciphertext bit
  assert.equal((await expectConnectError(srv.url, raw.toString("base64url"))).data?.code, "invalid_token");
  const tag = Buffer.from(valid, "base64url");
  tag[tag.length - 1] = tag[tag.length - 1]! ^ 0x80; // one tag bit
  assert.equal((await expectConnectError(srv.url, tag.toString("base64url"))).data?.code, "invalid_token");

  const wrongKey = pythonShareToken("another site's key", `${cs}:${inAnHour()}:edit`);
  assert.equal((await expectConnectError(srv.url, wrongKey)).data?.code, "invalid_token");
  // authentic, but the plaintext is not "<codespace>:<expiry>:<mode>"
  for (const plain of [`${cs}:${inAnHour()}:admin`, `${cs}-${inAnHour()}-edit`, `tmp-x:${inAnHour()}:edit`]) {
    assert.equal((await expectConnectError(srv.url, pythonShareToken(SECRET, plain))).data?.code, "invalid_token", plain);
  }
  assert.equal(stub.calls.length, calls, "the site API was called");
});

test("tokens not in the format go to the site API: garbage is refused by it, its own tokens are admitted", { timeout: 30_000 }, async () => {
  const garbage = "not a share token!";
  stub.setToken(garbage, { status: 404, body: {} });
  const apiToken = `api-${randomUUID()}`;
  const uuid = randomUUID();
  stub.setToken(apiToken, { status: 200, body: { uuid, mode: "view_only" } });
  const calls = stub.calls.length;
  assert.equal((await expectConnectError(srv.url, garbage)).data?.code, "invalid_token");
  const { socket, connected } = await connectSocket(srv.url, apiToken);
  socket.close();
  assert.equal(connected.codespace, uuid);
  assert.equal(connected.mode, "view_only");
  const asked = stub.calls.slice(calls);
  assert.equal(asked.length, 2);
  assert.ok(asked[0]!.includes(encodeURIComponent(garbage)) && asked[1]!.includes(apiToken));
});

test("without API_BASE_URL a token not in the format is refused with auth_unavailable; tmp- tokens still work", { timeout: 30_000 }, async () => {
  assert.equal((await expectConnectError(fixedSrv.url, "short-token")).data?.code, "auth_unavailable");
  const { socket, connected } = await connectSocket(fixedSrv.url, "tmp-share-test");
  socket.close();
  assert.equal(connected.codespace, "tmp-share-test");
});
