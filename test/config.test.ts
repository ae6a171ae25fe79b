/**
 * Config is declared once (server/config/variables.ts), read from the environment, validated (joi)
 * and frozen; a bad value stops the process with one line naming its variable; the configuration
 * tables of README.md and docs/operations.md are generated from the declarations and must not drift.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_ENV_NAMES, ConfigError, loadConfig } from "../server/config.js";
import { listenUrl } from "../server/listen-url.js";
import { TABLE_FILES, withConfigTable } from "../server/config/docs-table.js";
import { REPO_ROOT, SERVER_MAIN } from "./helpers/server-process.js";

test("defaults", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8888);
  assert.equal(c.host, "0.0.0.0");
  assert.equal(c.redisUrl, undefined);
  assert.equal(c.keyPrefix, "");
  assert.equal(c.apiBaseUrl, undefined);
  assert.equal(c.apiTimeoutMs, 5000);
  assert.deepEqual(c.corsOrigins, []);
  assert.equal(c.codespaceExpireUpdate, 86_400);
  assert.equal(c.tmpCodespaceExpireUpdate, 3600);
  assert.equal(c.historyLength, 500);
  assert.equal(c.maxDocLength, 1_000_000);
  assert.equal(c.maxMessageBytes, 4 * 1024 * 1024);
  assert.equal(c.logLevel, "info");
  assert.equal(c.metricsPort, undefined);
  assert.ok(Number.isInteger(c.workers) && c.workers >= 1);
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.corsOrigins));
});

test("values are converted, an empty value counts as unset, unknown variables are ignored", () => {
  const c = loadConfig({ PORT: "0", HISTORY_LENGTH: "", KEY_PREFIX: "cs:", METRICS_PORT: "9100", NOT_OURS: "x" });
  assert.equal(c.port, 0);
  assert.equal(c.historyLength, 500);
  assert.equal(c.keyPrefix, "cs:");
  assert.equal(c.metricsPort, 9100);
  assert.ok(!("NOT_OURS" in c));
});

test("blanks around a value are dropped, except in secrets", () => {
  const c = loadConfig({ HOST: " 127.0.0.1 ", PORT: " 9000", SAVE_URL: "http://site/save/", SAVE_SECRET: " s p " });
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.port, 9000);
  assert.equal(c.saveSecret, " s p ", "a secret is taken as given");
});

test("the listening URL: a wildcard HOST reads as localhost, IPv6 is bracketed", () => {
  assert.equal(listenUrl("0.0.0.0", 8888), "http://localhost:8888");
  assert.equal(listenUrl("::", 8888), "http://localhost:8888");
  assert.equal(listenUrl("::1", 8888), "http://[::1]:8888");
  assert.equal(listenUrl("127.0.0.1", 80), "http://127.0.0.1:80");
});

test("API_BASE_URL gains a trailing slash; CORS_ORIGIN is a list of origins", () => {
  const c = loadConfig({ API_BASE_URL: "http://site.example/api", CORS_ORIGIN: "http://a.test, https://b.test:8443,http://[::1]:3000" });
  assert.equal(c.apiBaseUrl, "http://site.example/api/");
  assert.deepEqual(c.corsOrigins, ["http://a.test", "https://b.test:8443", "http://[::1]:3000"]);
  assert.deepEqual(loadConfig({ CORS_ORIGIN: "*" }).corsOrigins, ["*"]);
  assert.deepEqual(loadConfig({ CORS_ORIGIN: "null, http://a.test" }).corsOrigins, ["null", "http://a.test"], "null: pages opened from disk");
});

for (const [key, value] of [
  ["PORT", "eighty"],
  ["PORT", "70000"],
  ["REDIS_URL", "http://not-redis"],
  ["API_TIMEOUT_MS", "-5"],
  ["HISTORY_LENGTH", "0"],
  ["LOG_LEVEL", "loud"],
  ["TMP_CODESPACE_EXPIRE_UPDATE", "1.5"],
  ["WORKERS", "0"],
  ["METRICS_PORT", "-1"],
] as const) {
  test(`invalid ${key}=${value} is refused with one line naming it`, () => {
    assert.throws(
      () => loadConfig({ [key]: value }),
      (e: Error) => e instanceof ConfigError && e.message.startsWith(`invalid ${key}`) && !e.message.includes("\n"),
    );
  });
}

for (const [entry, meant] of [
  ["http://a.test/", "http://a.test"],
  ["https://a.test/app", "https://a.test"],
  ["a.test", undefined],
  ["HTTPS://A.test", "https://a.test"],
  ["http://a.test:80", "http://a.test"],
  ["https://*.a.test", undefined],
  ["http://user@a.test", "http://a.test"],
] as const) {
  test(`CORS_ORIGIN entry ${JSON.stringify(entry)} is not an origin and is refused`, () => {
    assert.throws(
      () => loadConfig({ CORS_ORIGIN: `https://ok.test, ${entry}` }),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message.startsWith("invalid CORS_ORIGIN") &&
        e.message.includes(`${JSON.stringify(entry)} is not an origin`) &&
        (meant === undefined || e.message.includes(`did you mean ${meant}?`)),
    );
  });
}

test("a URL's value is not echoed in the message (it may carry a password)", () => {
  assert.throws(
    () => loadConfig({ REDIS_URL: "http://:hunter2@redis.internal:6379" }),
    (e: Error) => e instanceof ConfigError && e.message.startsWith("invalid REDIS_URL:") && !e.message.includes("hunter2"),
  );
  assert.throws(() => loadConfig({ PORT: "eighty" }), /^ConfigError: invalid PORT="eighty": /);
});

test("every declared variable reaches a Config field: setting it changes what loadConfig returns", () => {
  const fixed = { WORKERS: "3", SAVE_SECRET: "s" }; // SAVE_URL needs a secret
  const base = loadConfig(fixed);
  const samples: Record<string, string> = {
    PORT: "1234", HOST: "127.0.0.1", REDIS_URL: "redis://127.0.0.1:1/2", KEY_PREFIX: "p:", API_BASE_URL: "http://x.test/",
    CORS_ORIGIN: "http://x.test", LOG_LEVEL: "warn", WORKERS: "5", SAVE_URL: "http://site.test/save/",
    REDIS_CLUSTER_NODES: "h:7000", REDIS_WAIT_REPLICAS: "2", SAVE_LEASE_MS: "77777",
  };
  for (const name of CONFIG_ENV_NAMES) {
    const value = samples[name] ?? "7777";
    const changed = loadConfig({ ...fixed, [name]: value });
    const differing = Object.keys(base).filter((k) => JSON.stringify(base[k as keyof typeof base]) !== JSON.stringify(changed[k as keyof typeof changed]));
    assert.equal(differing.length, 1, `${name}=${value} changed ${differing.join(", ") || "nothing"}`);
  }
});

test("settings that depend on each other are refused by loadConfig (and by createServer for a hand-built Config), one line naming the variable", async () => {
  const { createServer } = await import("../server/index.js");
  for (const [env, re] of [
    [{ SAVE_URL: "http://site.test/save/" }, /^invalid SAVE_SECRET: required with SAVE_URL$/],
    [{ SAVE_DEBOUNCE_MS: "500", SAVE_MAX_WAIT_MS: "100" }, /^invalid SAVE_MAX_WAIT_MS/],
    [{ SAVE_TIMEOUT_MS: "1000", SAVE_LEASE_MS: "1000" }, /^invalid SAVE_LEASE_MS/],
  ] as const) {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && re.test(err.message));
    const handBuilt = { ...loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent" }), ...Object.fromEntries(Object.entries(env).map(([k, v]) => [fieldOf(k), k.endsWith("_MS") ? Number(v) : v])) };
    await assert.rejects(createServer(handBuilt), (err: Error) => err instanceof ConfigError && re.test(err.message));
  }
});

/** The Config field of an environment variable (SAVE_MAX_WAIT_MS -> saveMaxWaitMs). */
function fieldOf(env: string): string {
  return env.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

test("the configuration tables in README.md and docs/operations.md are the generated ones (npm run docs:config)", () => {
  for (const { path, flavour } of TABLE_FILES) {
    const text = readFileSync(join(REPO_ROOT, path), "utf8");
    assert.equal(text, withConfigTable(text, flavour), `${path} is out of date: run npm run docs:config`);
    for (const name of CONFIG_ENV_NAMES) assert.ok(text.includes(`| \`${name}\` |`), `${path} lists ${name}`);
  }
});

async function runServer(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, [SERVER_MAIN], { env: { PATH: process.env.PATH, ...env } });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  return { code, lines: stderr.trim().split("\n") };
}

test("the server process exits 1 with one line naming the variable", { timeout: 30_000 }, async () => {
  const bad = await runServer({ PORT: "eighty" });
  assert.equal(bad.code, 1);
  assert.equal(bad.lines.length, 1);
  assert.match(bad.lines[0]!, /invalid PORT/);
  const cors = await runServer({ CORS_ORIGIN: "https://site.test/" });
  assert.equal(cors.code, 1);
  assert.equal(cors.lines.length, 1);
  assert.match(cors.lines[0]!, /invalid CORS_ORIGIN.*"https:\/\/site\.test\/" is not an origin.*did you mean https:\/\/site\.test\?/);
});
