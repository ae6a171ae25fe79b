/** Config is read once from the environment, validated (joi) and frozen; a bad value names its variable. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { ConfigError, loadConfig } from "../server/config.js";
import { SERVER_MAIN } from "./helpers/server-process.js";

test("defaults", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8888);
  assert.equal(c.redisUrl, undefined);
  assert.equal(c.keyPrefix, "");
  assert.equal(c.apiTimeoutMs, 5000);
  assert.equal(c.historyLength, 500);
  assert.equal(c.maxDocLength, 1_000_000);
  assert.ok(Object.isFrozen(c));
});

test("API_BASE_URL gains a trailing slash; CORS_ORIGIN is a list", () => {
  const c = loadConfig({ API_BASE_URL: "http://site.example/api", CORS_ORIGIN: "http://a.test, http://b.test" });
  assert.equal(c.apiBaseUrl, "http://site.example/api/");
  assert.deepEqual(c.corsOrigins, ["http://a.test", "http://b.test"]);
});

for (const [key, value] of [
  ["PORT", "eighty"],
  ["PORT", "70000"],
  ["REDIS_URL", "http://not-redis"],
  ["API_TIMEOUT_MS", "-5"],
  ["HISTORY_LENGTH", "0"],
  ["LOG_LEVEL", "loud"],
  ["TMP_CODESPACE_EXPIRE_UPDATE", "1.5"],
] as const) {
  test(`invalid ${key}=${value} is refused with a message naming it`, () => {
    assert.throws(() => loadConfig({ [key]: value }), (e: Error) => e instanceof ConfigError && e.message.startsWith(`invalid ${key}:`));
  });
}

test("the server process exits 1 with one line naming the variable", async () => {
  const child = spawn(process.execPath, [SERVER_MAIN], { env: { PATH: process.env.PATH, PORT: "eighty" } });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((r) => child.on("exit", r));
  assert.equal(code, 1);
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /invalid PORT/);
});
