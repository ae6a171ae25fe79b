/**
 * What an operator sees of Redis, with a real server process and a real redis-server started late,
 * stopped and restarted on the same port: the port opens at once (`/healthz` 200, `/readyz` 503)
 * while a warn line "waiting for Redis at 127.0.0.1:<port>" repeats; handshakes are refused at once
 * with `store_unavailable` in `connect_error.data`; once Redis answers, one line says so and
 * everything works; losing Redis gives one line (and refusals again), its return one line, and a
 * client connected all along keeps editing.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CodespaceClient } from "../client/index.js";
import { freePort, startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { connectSocket, expectConnectError } from "./helpers/socket.js";

let redisPort: number;
let redis: RedisServerHandle | undefined;
let srv: ServerProcess;
/** Redis's own folder, kept across its stop and start (AOF, as in docker-compose.yml). */
let redisDir: string;

function launchRedis(): Promise<RedisServerHandle> {
  return startRedis({ port: redisPort, args: ["--notify-keyspace-events", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", redisDir] });
}

before(async () => {
  redisPort = await freePort();
  redisDir = await mkdtemp(join(tmpdir(), "redis-visibility-"));
  srv = await startServerProcess({ REDIS_URL: `redis://127.0.0.1:${redisPort}`, LOG_LEVEL: "info" }, { waitReady: false });
});
after(async () => {
  await srv?.kill();
  await redis?.stop();
  await rm(redisDir, { recursive: true, force: true });
});

/** Log lines (parsed pino records) whose msg matches `re`. */
function lines(re: RegExp): { msg: string; level: number }[] {
  return srv
    .output()
    .split("\n")
    .flatMap((l) => {
      try {
        const r = JSON.parse(l) as { msg: string; level: number };
        return re.test(r.msg) ? [r] : [];
      } catch {
        return [];
      }
    });
}

/** Polls the output (bounded) until `count` lines match `re`. */
async function waitLines(re: RegExp, count = 1, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (lines(re).length < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} log lines match ${re}\n${srv.output().slice(-3000)}`);
    await sleep(50);
  }
}

const status = (path: string): Promise<number> => fetch(`${srv.url}${path}`).then((r) => r.status);

async function waitReadyz(code: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await status("/readyz")) !== code) {
    if (Date.now() > deadline) throw new Error(`/readyz never answered ${code}`);
    await sleep(50);
  }
}

test("Redis not there yet, then started, lost and back: one clear line each, fast refusals meanwhile", { timeout: 120_000 }, async () => {
  const target = `127.0.0.1:${redisPort}`;
  // the port is open although Redis has never answered
  assert.equal(await status("/healthz"), 200);
  assert.equal(await status("/readyz"), 503);
  await waitLines(new RegExp(`^waiting for Redis at ${target}$`), 2); // at start, then again a few seconds later
  assert.ok(lines(/^waiting for Redis/).every((l) => l.level === 40), "warn level");

  const refused = await expectConnectError(srv.url, `tmp-${randomUUID()}`, ["websocket"], { timeoutMs: 3000 });
  assert.equal(refused.data?.code, "store_unavailable");

  redis = await launchRedis();
  await waitLines(new RegExp(`^connected to Redis at ${target}$`));
  await waitReadyz(200);
  const token = `tmp-${randomUUID()}`;
  const c = await CodespaceClient.connect(srv.url, token, { transports: ["websocket"] });
  try {
    c.applyLocal([{ from: 0, to: 0, insert: "before" }]);
    await c.whenSynced();
    const waitingLines = lines(/^waiting for Redis/).length;

    await redis.stop();
    redis = undefined;
    await waitLines(/^Redis connection lost/);
    await waitReadyz(503);
    const again = await expectConnectError(srv.url, token, ["polling"], { timeoutMs: 3000 });
    assert.equal(again.data?.code, "store_unavailable");
    c.applyLocal([{ from: c.text.length, to: c.text.length, insert: " during" }]); // refused, retried

    redis = await launchRedis();
    await waitLines(/^Redis connection back/);
    await waitReadyz(200);
    await c.whenSynced();
    assert.equal(c.text, "before during");
    const { connected } = await connectSocket(srv.url, token, ["websocket"]);
    assert.equal(connected.code, "before during");

    assert.equal(lines(/^Redis connection lost/).length, 1, "one line when lost");
    assert.equal(lines(/^Redis connection back/).length, 1, "one line when back");
    assert.equal(lines(/^waiting for Redis/).length, waitingLines, "no waiting lines after the first connection");
  } finally {
    c.close();
  }
});
