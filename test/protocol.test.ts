/**
 * The protocol module (protocol/) against the server that implements it: the constants a client
 * relies on (namespace, `tmp-` tokens, default limits) are what a real server does, and the error
 * codes are the ones the server has classes for.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { DEFAULT_LIMITS, ERROR_CODES, isErrorCode, NAMESPACE, TMP_TOKEN_PATTERN, TMP_TOKEN_PREFIX } from "../protocol/index.js";
import { ErrorClasses } from "../server/errors.js";
import { loadConfig } from "../server/config.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";

let srv: InProcessServer;
before(async () => {
  srv = await startInProcessServer();
});
after(() => srv?.close());

test("every protocol error code has exactly one server error class", () => {
  assert.deepEqual(Object.keys(ErrorClasses).sort(), [...ERROR_CODES].sort());
  assert.ok(isErrorCode("invalid_payload"));
  assert.ok(!isErrorCode("no_such_code"));
});

test("DEFAULT_LIMITS are the server's configuration defaults", () => {
  const config = loadConfig({});
  for (const [key, value] of Object.entries(DEFAULT_LIMITS)) {
    assert.equal((config as unknown as Record<string, unknown>)[key], value, key);
  }
});

test("a token of TMP_TOKEN_PATTERN opens a temporary codespace in NAMESPACE", { timeout: 30_000 }, async () => {
  assert.equal(NAMESPACE, "/codespace");
  const token = `${TMP_TOKEN_PREFIX}${randomUUID()}`;
  assert.match(token, TMP_TOKEN_PATTERN);
  const { socket, connected } = await connectSocket(srv.url, token);
  try {
    assert.equal(connected.codespace, token);
    assert.equal(connected.mode, "edit");
  } finally {
    socket.close();
  }
});

test("a tmp- token outside TMP_TOKEN_PATTERN is refused with invalid_token", { timeout: 30_000 }, async () => {
  const token = TMP_TOKEN_PREFIX + "x".repeat(65);
  assert.doesNotMatch(token, TMP_TOKEN_PATTERN);
  const err = await expectConnectError(srv.url, token);
  assert.equal(err.data?.code, "invalid_token");
});
