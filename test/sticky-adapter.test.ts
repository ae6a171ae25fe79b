/**
 * cluster/sticky-adapter.ts against the real @socket.io/sticky: this test process is the cluster
 * primary, with 2 real Socket.IO workers (test/helpers/sticky-worker.ts). It fails when the library
 * changes what the adapter relies on: the `sticky:connection` / `sticky:disconnection` IPC messages
 * (session bindings), `worker.clientsCount` as the least-connection input, and `connection` events
 * on the server given to `setupMaster`.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import cluster, { type Worker } from "node:cluster";
import { join } from "node:path";
import { setupStickyPrimary, sidOf, type StickyPrimary } from "../cluster/sticky-adapter.js";
import { REPO_ROOT } from "./helpers/server-process.js";

const WORKER = join(REPO_ROOT, "dist", "test", "helpers", "sticky-worker.js");
/** sticky's binding message is delayed this long in the workers (a busy machine's IPC). */
const BIND_DELAY_MS = 1000;

let router: StickyPrimary;
let base: string;
let workers: Worker[] = [];

before(async () => {
  cluster.setupPrimary({ exec: WORKER, serialization: "advanced" });
  router = setupStickyPrimary();
  const address = await router.listen(0, "127.0.0.1");
  base = `http://127.0.0.1:${address.port}/socket.io/?EIO=4&transport=polling`;
  workers = [0, 1].map(() => {
    const w = cluster.fork({ STICKY_BIND_DELAY_MS: String(BIND_DELAY_MS) });
    router.add(w);
    return w;
  });
  await Promise.all(workers.map((w) => new Promise<void>((r) => w.on("message", (m: { type?: string }) => m?.type === "test:ready" && r()))));
  for (const w of workers) router.setRoutable(w, true);
  router.open();
});

after(() => {
  router?.close();
  for (const w of workers) w.process.kill("SIGKILL");
});

/** An engine.io polling handshake: the session id and the pid of the worker that answered. */
async function handshake(): Promise<{ sid: string; pid: string }> {
  const res = await fetch(base);
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return { sid: (JSON.parse(body.slice(1)) as { sid: string }).sid, pid: res.headers.get("x-worker") ?? "" };
}

/** The session's first POST (the namespace CONNECT packet): status, body and answering worker. */
async function post(sid: string): Promise<{ status: number; body: string; pid: string | null }> {
  const res = await fetch(`${base}&sid=${sid}`, { method: "POST", body: "40", headers: { "content-type": "text/plain;charset=UTF-8" } });
  return { status: res.status, body: await res.text(), pid: res.headers.get("x-worker") };
}

const pidOf = (w: Worker): string => String(w.process.pid);

describe("sticky adapter", { timeout: 60_000 }, () => {
  test("sidOf reads the sid of a request line only", () => {
    assert.equal(sidOf(Buffer.from("GET /socket.io/?EIO=4&transport=polling&sid=abcdefghij0123456789 HTTP/1.1\r\nHost: x\r\n\r\n")), "abcdefghij0123456789");
    assert.equal(sidOf(Buffer.from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nCookie: sid=abcdefghij0123456789\r\n\r\n")), undefined);
  });

  test("a request for a session its worker announced but sticky has not bound yet waits, then reaches that worker", async () => {
    const [w1, w2] = workers as [Worker, Worker];
    const heldBefore = router.heldTotal;
    const inVainBefore = router.heldInVain;
    // sessions on w1; then w2 becomes the least-connection choice: a request sticky does not yet
    // know the session of would go to w2 and get 400 "Session ID unknown"
    router.setRoutable(w2, false);
    const sessions = await Promise.all(Array.from({ length: 10 }, handshake));
    router.setRoutable(w1, false);
    router.setRoutable(w2, true);
    try {
      assert.deepEqual(new Set(sessions.map((s) => s.pid)), new Set([pidOf(w1)]));
      const posts = await Promise.all(sessions.map((s) => post(s.sid))); // sticky learns the bindings BIND_DELAY_MS later
      posts.forEach((p, i) => {
        assert.equal(p.status, 200, `session ${i}: ${p.body}`);
        assert.equal(p.pid, pidOf(w1), `session ${i} answered by another worker`);
      });
      assert.ok(router.heldTotal - heldBefore >= 1, "no request was held: the race this test is about did not happen");
      // released by sticky's binding message, not by the hold's timeout
      assert.equal(router.heldInVain, inVainBefore, "a held request was released by the timeout: did sticky's IPC message change?");
    } finally {
      router.setRoutable(w1, true);
    }
  });

  test("a burst of new sessions goes each to the least loaded worker although the bindings arrive late", async () => {
    const [w1, w2] = workers as [Worker, Worker];
    const load = () => workers.map((w) => (w as Worker & { clientsCount?: number }).clientsCount!);
    const before = load();
    const sessions = await Promise.all(Array.from({ length: 20 }, handshake));
    // what least-connection must give: each new session to the lesser load (w1 on a tie)
    const expected = [...before];
    for (let i = 0; i < 20; i++) expected[expected[0]! <= expected[1]! ? 0 : 1]!++;
    const on = (w: Worker) => sessions.filter((s) => s.pid === pidOf(w)).length;
    assert.deepEqual([on(w1), on(w2)], [expected[0]! - before[0]!, expected[1]! - before[1]!], `loads before ${before}`);
    assert.deepEqual(load(), expected);
  });

  test("new sessions go only to routable workers (a starting or draining worker gets none)", async () => {
    const [w1, w2] = workers as [Worker, Worker];
    router.setRoutable(w1, false);
    try {
      const sessions = await Promise.all(Array.from({ length: 10 }, handshake));
      assert.deepEqual(new Set(sessions.map((s) => s.pid)), new Set([pidOf(w2)]));
    } finally {
      router.setRoutable(w1, true);
    }
    // both routable again: the least-connection balancer (sticky, on the adapter's counts) picks
    // the worker holding fewer sessions
    const settle = () => new Promise((r) => setTimeout(r, BIND_DELAY_MS * 2)); // counts arrive with the delayed bindings
    const countsNow = () => workers.map((w) => (w as Worker & { clientsCount?: number }).clientsCount!);
    await settle();
    if (countsNow()[0] === countsNow()[1]) {
      await handshake();
      await settle();
    }
    const counts = countsNow();
    assert.notEqual(counts[0], counts[1]);
    const fewer = counts[0]! < counts[1]! ? w1 : w2;
    assert.equal((await handshake()).pid, pidOf(fewer), `clientsCount ${JSON.stringify(counts)}`);
  });

  test("a stopped worker's sessions are answered 400 \"Session ID unknown\" by the primary, not handed over", async () => {
    const s = await handshake();
    const w = workers.find((x) => pidOf(x) === s.pid)!;
    await new Promise((r) => setTimeout(r, BIND_DELAY_MS * 2)); // bound in sticky
    router.stop(w);
    const p = await post(s.sid);
    assert.equal(p.status, 400);
    assert.match(p.body, /Session ID unknown/);
    assert.equal(p.pid, null, "the request reached a worker");
  });
});
