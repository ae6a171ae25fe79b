/**
 * Handshake (docs/protocol.md, "Handshake"): token kinds, site API answers and failures, the
 * `connected` payload, on both transports, against an in-process server and a stub site API.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { startStubApi, type StubApi, type StubResponse } from "./helpers/stub-api.js";
import { connectSocket, expectConnectError, TRANSPORTS, type ConnectError, type Transport } from "./helpers/socket.js";

const API_TIMEOUT_MS = 500;
/** Generous bound for a rejection that must come from API_TIMEOUT_MS, not from a hang. */
const TIMEOUT_SLACK_MS = 1500;

type Srv = CodespaceServer;

let stub: StubApi;
let srv: Srv;
let url: string;
/** A server without API_BASE_URL. */
let bare: Srv;
let bareUrl: string;

before(async () => {
  stub = await startStubApi();
  ({ server: srv, url } = await startInProcessServer({
    API_BASE_URL: stub.baseUrl,
    API_TIMEOUT_MS: String(API_TIMEOUT_MS),
    LOG_LEVEL: "error",
  }));
  ({ server: bare, url: bareUrl } = await startInProcessServer({ LOG_LEVEL: "error" }));
});

after(async () => {
  await Promise.allSettled([srv?.close(), bare?.close()]);
  await stub?.close();
});

/** A token the stub does not know yet, unique per case. */
function freshToken(label: string): string {
  return `${label}-${randomUUID()}`;
}

function apiPath(token: string): string {
  return `/codespace/${token}/?fields=uuid,mode`;
}

/** Asserts a handshake rejection: human message, stable code in `data.code`. */
function assertRejected(err: ConnectError, code: string): void {
  assert.equal(err.data?.code, code, `expected data.code ${code}, got ${JSON.stringify(err.data)} (${err.message})`);
  assert.equal(typeof err.message, "string");
  assert.ok(err.message.length > 0, "message is empty");
  assert.notEqual(err.message, code, "message should be a human sentence, not the code");
  assert.equal(err.data?.message, err.message, "data.message repeats the message");
}

/** Connects with a token the stub answers with `response`; returns the new API calls too. */
async function withApiAnswer<T>(
  label: string,
  response: StubResponse,
  run: (token: string) => Promise<T>,
): Promise<{ result: T; calls: string[]; token: string }> {
  const token = freshToken(label);
  stub.setToken(token, response);
  const from = stub.calls.length;
  const result = await run(token);
  return { result, calls: stub.calls.slice(from), token };
}

for (const transports of TRANSPORTS) {
  const name = transports.join("+");
  const t: readonly Transport[] = transports;

  describe(`handshake over ${name}`, () => {
    test("a tmp- token is accepted in mode edit without an API call; connected payload shape", async () => {
      const token = `tmp-${randomUUID()}`;
      const from = stub.calls.length;
      const { socket, connected } = await connectSocket(url, token, t);
      try {
        assert.deepEqual(Object.keys(connected).sort(), ["code", "codespace", "epoch", "id", "limits", "mode", "ttl", "users", "version"]);
        assert.deepEqual(connected.limits, { maxChangesPerUpdate: 1000, maxChangesPerBatch: 2000, maxUpdatesPerBatch: 1000, maxMessageBytes: 4 * 1024 * 1024 });
        assert.equal(connected.id, socket.id);
        assert.equal(connected.codespace, token);
        assert.equal(connected.mode, "edit");
        assert.equal(typeof connected.epoch, "string");
        assert.ok(connected.epoch.length > 0);
        assert.equal(connected.version, 0);
        assert.equal(connected.code, "");
        assert.deepEqual(stub.calls.slice(from), []);
      } finally {
        socket.close();
      }
    });

    for (const mode of ["edit", "view_only"] as const) {
      test(`API 200 ${mode}: joins codespace uuid with mode ${mode}; exact API path`, async () => {
        const uuid = randomUUID();
        const { result, calls, token } = await withApiAnswer(`ok-${mode}`, { status: 200, body: { uuid, mode } }, (tok) =>
          connectSocket(url, tok, t),
        );
        const { socket, connected } = result;
        try {
          assert.equal(connected.codespace, uuid);
          assert.equal(connected.mode, mode);
          assert.equal(connected.id, socket.id);
          assert.equal(typeof connected.epoch, "string");
          assert.equal(typeof connected.version, "number");
          assert.equal(typeof connected.code, "string");
          assert.deepEqual(calls, [apiPath(token)]);
        } finally {
          socket.close();
        }
      });
    }

    for (const status of [401, 403, 404]) {
      test(`API ${status} -> invalid_token`, async () => {
        const { result, calls, token } = await withApiAnswer(`s${status}`, { status, body: { detail: "nope" } }, (tok) =>
          expectConnectError(url, tok, t),
        );
        assertRejected(result, "invalid_token");
        assert.deepEqual(calls, [apiPath(token)]);
      });
    }

    const unavailable: [string, StubResponse][] = [
      ["500", { status: 500, body: { detail: "boom" } }],
      ["502", { status: 502, rawBody: "<html>bad gateway</html>" }],
      ["malformed body", { status: 200, rawBody: '{"uuid": "abc", "mode": ' }],
      ["200 with a wrong shape", { status: 200, body: { uuid: 42, mode: "admin" } }],
      ["connection destroyed", { destroy: true }],
    ];
    for (const [label, response] of unavailable) {
      test(`API ${label} -> auth_unavailable`, async () => {
        const { result, calls, token } = await withApiAnswer(label.replace(/\W+/g, "_"), response, (tok) =>
          expectConnectError(url, tok, t),
        );
        assertRejected(result, "auth_unavailable");
        assert.ok(calls.length >= 1, "the API was not called");
        for (const c of calls) assert.equal(c, apiPath(token));
      });
    }

    const slow: [string, StubResponse][] = [
      ["answering after API_TIMEOUT_MS", { delayMs: API_TIMEOUT_MS + 2500, status: 200, body: { uuid: randomUUID(), mode: "edit" } }],
      ["stalling after the first byte", { stallAfterFirstByte: true, status: 200, body: { uuid: randomUUID(), mode: "edit" } }],
    ];
    for (const [label, response] of slow) {
      test(`API ${label} -> auth_unavailable, cut at API_TIMEOUT_MS`, async () => {
        const t0 = Date.now();
        const { result, calls, token } = await withApiAnswer(label.replace(/\W+/g, "_"), response, (tok) =>
          expectConnectError(url, tok, t, { timeoutMs: API_TIMEOUT_MS + 4000 }),
        );
        const elapsed = Date.now() - t0;
        assertRejected(result, "auth_unavailable");
        assert.ok(elapsed >= API_TIMEOUT_MS - 100, `rejected after ${elapsed} ms, before API_TIMEOUT_MS`);
        assert.ok(elapsed < API_TIMEOUT_MS + TIMEOUT_SLACK_MS, `rejected only after ${elapsed} ms`);
        assert.ok(calls.length >= 1, "the API was not called");
        for (const c of calls) assert.equal(c, apiPath(token));
      });
    }

    const missing: [string, unknown][] = [
      ["missing", undefined],
      ["empty", ""],
      ["a number", 42],
      ["an object", { token: "tmp-x" }],
      ["null", null],
    ];
    for (const [label, token] of missing) {
      test(`token ${label} -> missing_token, no API call`, async () => {
        const from = stub.calls.length;
        const err = await expectConnectError(url, token, t);
        assertRejected(err, "missing_token");
        assert.deepEqual(stub.calls.slice(from), []);
      });
    }

    for (const token of ["tmp-", "tmp-a b", "tmp-ab/cd", `tmp-${"a".repeat(65)}`]) {
      test(`malformed tmp- token ${JSON.stringify(token.length > 20 ? token.slice(0, 12) + "..." : token)} -> invalid_token, no API call`, async () => {
        const from = stub.calls.length;
        const err = await expectConnectError(url, token, t);
        assertRejected(err, "invalid_token");
        assert.deepEqual(stub.calls.slice(from), []);
      });
    }

    test("without API_BASE_URL: a non-tmp token -> auth_unavailable naming API_BASE_URL", async () => {
      const err = await expectConnectError(bareUrl, freshToken("noapi"), t);
      assertRejected(err, "auth_unavailable");
      assert.match(err.message, /API_BASE_URL/);
    });

    test("without API_BASE_URL: a tmp- token still works", async () => {
      const token = `tmp-${randomUUID()}`;
      const { socket, connected } = await connectSocket(bareUrl, token, t);
      socket.close();
      assert.equal(connected.codespace, token);
      assert.equal(connected.mode, "edit");
    });
  });
}

test("GET /healthz answers 200", async () => {
  const res = await fetch(`${url}/healthz`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
});
