/**
 * Redis Cluster without a cluster: REDIS_CLUSTER_NODES / REDIS_WAIT_REPLICAS validation (including
 * the real server process refusing both REDIS_URL and REDIS_CLUSTER_NODES with one line), the
 * commit-feed channel staying in its key's slot for any key (fast-check, braces included), and
 * docker-compose.cluster.yml validated by Debian's `docker-compose config`.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { ConfigError, loadConfig } from "../server/config.js";
import { feedChannel, hashedPart, keySlot as calculateSlot } from "../server/store/feed-channel.js";
import { configuredServers } from "./helpers/haproxy.js";
import { REPO_ROOT, SERVER_MAIN } from "./helpers/server-process.js";

const run = promisify(execFile);

test("REDIS_CLUSTER_NODES is parsed into seeds; REDIS_WAIT_REPLICAS defaults to 0", () => {
  const c = loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-2:7001 ,h3:7002", REDIS_WAIT_REPLICAS: "1" });
  assert.deepEqual(c.redisClusterNodes, [
    { host: "10.0.0.1", port: 7000 },
    { host: "redis-2", port: 7001 },
    { host: "h3", port: 7002 },
  ]);
  assert.equal(c.redisWaitReplicas, 1);
  assert.equal(c.redisUrl, undefined);
  assert.ok(Object.isFrozen(c.redisClusterNodes));
  assert.equal(loadConfig({}).redisWaitReplicas, 0);
  assert.equal(loadConfig({}).redisClusterNodes, undefined);
});

for (const [key, value] of [
  ["REDIS_CLUSTER_NODES", "redis-1"],
  ["REDIS_CLUSTER_NODES", "redis-1:6379,"],
  ["REDIS_CLUSTER_NODES", "redis://redis-1:6379"],
  ["REDIS_WAIT_REPLICAS", "-1"],
  ["REDIS_WAIT_REPLICAS", "one"],
] as const) {
  test(`invalid ${key}=${value} is refused with a message naming it`, () => {
    assert.throws(() => loadConfig({ [key]: value }), (e: Error) => e instanceof ConfigError && e.message.startsWith(`invalid ${key}=`));
  });
}

test("REDIS_URL and REDIS_CLUSTER_NODES together: the server exits 1 with one line saying to choose", async () => {
  assert.throws(
    () => loadConfig({ REDIS_URL: "redis://a:6379", REDIS_CLUSTER_NODES: "a:7000" }),
    (e: Error) => e instanceof ConfigError && /^invalid REDIS_CLUSTER_NODES: .*either REDIS_URL .* or REDIS_CLUSTER_NODES/.test(e.message),
  );
  const child = spawn(process.execPath, [SERVER_MAIN], {
    env: { PATH: process.env.PATH, REDIS_URL: "redis://127.0.0.1:1", REDIS_CLUSTER_NODES: "127.0.0.1:2" },
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((r) => child.on("exit", r));
  assert.equal(code, 1);
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.match(stderr, /invalid REDIS_CLUSTER_NODES/);
});

test("the commit-feed channel of any key is in the key's slot, and distinct keys get distinct channels", () => {
  const key = fc.string({ unit: fc.constantFrom("{", "}", "a", "b", ":", "-", "é", "😀"), minLength: 1, maxLength: 12 });
  fc.assert(
    fc.property(key, key, (k1, k2) => {
      assert.equal(calculateSlot(feedChannel(k1)), calculateSlot(k1), `${k1} -> ${feedChannel(k1)}`);
      if (k1 !== k2) assert.notEqual(feedChannel(k1), feedChannel(k2));
    }),
    { numRuns: 2000 },
  );
  // the usual case: a brace-free key is its own hash tag
  assert.equal(feedChannel("3f2a"), "{3f2a}codespace-feed:3f2a");
  assert.equal(hashedPart("a{b}c"), "b");
  assert.equal(hashedPart("a{}b"), "a{}b");
});

test("docker-compose.cluster.yml: docker-compose config accepts it; 6 Redis nodes in cluster mode, the cluster created with one replica per master, servers on REDIS_CLUSTER_NODES behind haproxy.cfg", async () => {
  const compose = join(REPO_ROOT, "docker-compose.cluster.yml");
  await run("docker-compose", ["-f", compose, "config", "-q"], { cwd: REPO_ROOT });
  const { stdout } = await run("docker-compose", ["-f", compose, "config", "--services"], { cwd: REPO_ROOT });
  const services = stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  const nodes = services.filter((s) => /^redis-\d$/.test(s));
  assert.equal(nodes.length, 6, services.join(", "));
  for (const s of ["redis-cluster-init", "haproxy"]) assert.ok(services.includes(s), `service ${s} missing`);
  for (const { address } of configuredServers()) assert.ok(services.includes(address.split(":")[0]!), `haproxy server ${address} is a service`);
  const { stdout: resolved } = await run("docker-compose", ["-f", compose, "config"], { cwd: REPO_ROOT });
  assert.match(resolved, /--cluster-enabled yes/);
  assert.match(resolved, /notify-keyspace-events Kgx/);
  assert.match(resolved, /--cluster-require-full-coverage no/);
  assert.match(resolved, /--cluster create[\s\S]*--cluster-replicas 1/);
  const seeds = resolved.match(/REDIS_CLUSTER_NODES: (\S+)/)?.[1] ?? "";
  assert.deepEqual(
    seeds.split(",").map((s) => s.split(":")[0]).sort(),
    [...nodes].sort(),
    "the servers' seeds are the six nodes",
  );
  assert.doesNotMatch(resolved, /REDIS_URL/, "the servers must not also get REDIS_URL");
  assert.match(resolved, /haproxy\.cfg/);
});
