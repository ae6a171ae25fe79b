/**
 * Real keystroke traces (test/fixtures/traces) replayed through the server: one writer on one server
 * process, two readers (polling and websocket) on ANOTHER process, both on one real Redis. Every
 * reader's text and the Redis `code` field must end equal to the trace's endContent.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { CodespaceClient } from "../client/index.js";
import { startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { startServerProcess, type ServerProcess } from "./helpers/server-process.js";
import { loadTrace, typeTrace } from "./helpers/traces.js";

const SEQUENTIAL = ["sveltecomponent.json.gz", "rustcode.json.gz", "friendsforever_flat.json.gz"];

describe("real trace replay across two processes on one Redis", () => {
  let redis: RedisServerHandle;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    redis = await startRedis();
    // a replay types far faster than people do: lift the per-socket rate limit
    const env = { REDIS_URL: redis.url, RATE_LIMIT_EVENTS: "1000000" };
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  for (const file of SEQUENTIAL) {
    test(file, { timeout: 120_000 }, async () => {
      const trace = loadTrace(file);
      assert.equal(trace.startContent, "");
      const token = `tmp-trace-${file.split(".")[0]}`;
      const writer = await CodespaceClient.connect(a.url, token, { transports: ["websocket"] });
      const readers = await Promise.all([
        CodespaceClient.connect(b.url, token, { transports: ["polling"] }),
        CodespaceClient.connect(b.url, token, { transports: ["websocket"] }),
      ]);
      try {
        await typeTrace(writer, trace);
        assert.equal(writer.text, trace.endContent, "the writer's own replay");
        await writer.whenSynced();
        await Promise.all(readers.map((r) => r.waitForVersion(writer.version)));
        for (const r of readers) assert.equal(r.text, trace.endContent);
        assert.equal(await redis.client().hget(token, "code"), trace.endContent);
        assert.equal(Number(await redis.client().hget(token, "version")), writer.version);
      } finally {
        writer.close();
        for (const r of readers) r.close();
      }
    });
  }
});
