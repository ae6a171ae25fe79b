/**
 * CodespaceClient against an in-process server (in-memory store, `tmp-` tokens): convergence under
 * concurrent random edits on both transports, reconnect after a forced disconnect mid-edit with no
 * duplicated text, selections, and a refused handshake.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { CodespaceServer } from "../server/index.js";
import { CodespaceClient, CodespaceClientError, type CodespaceClientEvents } from "../client/index.js";
import { startInProcessServer } from "./helpers/in-process-server.js";

type Srv = CodespaceServer;

let srv: Srv;
let url: string;
const clients: CodespaceClient[] = [];

before(async () => {
  ({ server: srv, url } = await startInProcessServer({ LOG_LEVEL: "error" }));
});

after(async () => {
  for (const c of clients) c.close();
  await srv?.close();
});

/** Seeded PRNG (mulberry32): integers in [0, n). */
function prng(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % 4294967296) % n;
  };
}

async function open(token: string, transports: ("polling" | "websocket")[]): Promise<CodespaceClient> {
  const c = await CodespaceClient.connect(url, token, { transports });
  c.on("error", (err) => assert.fail(`client error: ${err.code} ${err.message}`));
  clients.push(c);
  return c;
}

/** Moves `pos` off the middle of a surrogate pair of `text`. */
function snap(text: string, pos: number): number {
  const c = text.charCodeAt(pos);
  return pos > 0 && pos < text.length && c >= 0xdc00 && c <= 0xdfff ? pos - 1 : pos;
}

const PIECES = ["a", "bc", "\r\n", "\n", "\r", "😀", "é", " ", "xyz"];

/** One random edit (insert, delete or replace) against the client's current text. */
function randomEdit(c: CodespaceClient, rand: (n: number) => number): void {
  const text = c.text;
  const from = snap(text, rand(text.length + 1));
  const to = rand(3) === 0 ? from : snap(text, from + rand(Math.min(6, text.length - from) + 1));
  const insert = rand(4) === 0 ? "" : PIECES[rand(PIECES.length)]!;
  if (from === to && insert === "") return;
  c.applyLocal([{ from, to, insert }]);
}

/** Waits until every client is synced and at the same version, then returns the texts. */
async function settle(cs: CodespaceClient[]): Promise<string[]> {
  for (let round = 0; round < 50; round++) {
    await Promise.all(cs.map((c) => c.whenSynced()));
    const top = Math.max(...cs.map((c) => c.version));
    await Promise.all(cs.map((c) => c.waitForVersion(top)));
    if (cs.every((c) => c.version === top && c.pending === 0)) return cs.map((c) => c.text);
  }
  throw new Error("clients did not settle");
}

test("two clients converge after concurrent random edits (polling + websocket)", async () => {
  const token = `tmp-${randomUUID()}`;
  const a = await open(token, ["polling", "websocket"]);
  const b = await open(token, ["websocket"]);
  assert.equal(a.codespace, token);
  assert.equal(a.mode, "edit");
  assert.equal(a.epoch, b.epoch);
  const changes: Record<string, number> = { a: 0, b: 0 };
  a.on("change", ({ remote }) => remote && changes.a!++);
  b.on("change", ({ remote }) => remote && changes.b!++);

  for (const seed of [1, 2, 3]) {
    const rand = prng(seed);
    for (let i = 0; i < 120; i++) {
      randomEdit(rand(2) ? a : b, rand);
      if (rand(4) === 0) await sleep(rand(3));
    }
    const [ta, tb] = await settle([a, b]);
    assert.equal(ta, tb);
  }
  assert.ok(changes.a! > 0 && changes.b! > 0, "both saw remote changes");

  // A newcomer's snapshot equals what both hold, byte for byte.
  const c = await open(token, ["websocket"]);
  assert.equal(c.text, a.text);
  assert.equal(c.version, a.version);
});

test("a client force-disconnected mid-edit reconnects, resends and converges without duplicates", async () => {
  const token = `tmp-${randomUUID()}`;
  const a = await open(token, ["websocket"]);
  const b = await open(token, ["polling", "websocket"]);
  const statuses: CodespaceClientEvents["status"]["status"][] = [];
  a.on("status", ({ status }) => statuses.push(status));
  const rand = prng(7);
  const markers: string[] = [];
  let n = 0;
  /** Inserts a unique marker at a random position (inserts only: each must survive exactly once). */
  const insertMarker = (c: CodespaceClient, who: string) => {
    const m = `<${who}${n++}>`;
    markers.push(m);
    const text = c.text;
    // Only between markers, so a marker is never split by another insert.
    const cuts = [0, ...[...text.matchAll(/>/g)].map((x) => x.index! + 1)];
    const at = cuts[rand(cuts.length)]!;
    c.applyLocal([{ from: at, to: at, insert: m }]);
  };

  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 10; i++) {
      insertMarker(a, "a");
      insertMarker(b, "b");
      if (i % 3 === 0) await sleep(1);
    }
    // Let the push leave (a batch in flight), then cut the transport under it.
    await Promise.resolve();
    a.socket.io.engine.close();
    // Keep editing while disconnected; these are sent after the reconnect.
    for (let i = 0; i < 5; i++) {
      insertMarker(a, "a");
      insertMarker(b, "b");
    }
    const [ta, tb] = await settle([a, b]);
    assert.equal(ta, tb);
    assert.equal(a.status, "connected");
  }
  assert.ok(statuses.includes("disconnected"), "a saw the disconnect");
  const text = a.text;
  for (const m of markers) assert.equal(text.split(m).length - 1, 1, `marker ${m} appears once`);
  assert.equal(text.length, markers.join("").length, "no stray text");

  const fresh = await open(token, ["websocket"]);
  assert.equal(fresh.text, text);
});

test("out-of-order and lost broadcasts are reordered, and gaps are filled by pull", async () => {
  const token = `tmp-${randomUUID()}`;
  const a = await open(token, ["websocket"]);
  const b = await open(token, ["websocket"]);
  // Stand between b's socket and the client: hold back every 3rd broadcast, drop every 5th.
  const [deliver] = b.socket.listeners("insert_value");
  assert.ok(deliver);
  b.socket.off("insert_value", deliver);
  let seen = 0;
  let dropped = 0;
  let pulls = 0;
  b.socket.onAnyOutgoing((event) => event === "pull" && pulls++);
  b.socket.on("insert_value", (u) => {
    seen++;
    if (seen % 5 === 0) return void dropped++;
    if (seen % 3 === 0) return void setTimeout(() => deliver(u), 30);
    deliver(u);
  });
  const rand = prng(11);
  for (let i = 0; i < 60; i++) {
    randomEdit(rand(3) ? a : b, rand);
    if (rand(3) === 0) await sleep(rand(4));
  }
  const [ta, tb] = await settle([a, b]);
  assert.equal(ta, tb);
  assert.ok(dropped > 0, "some broadcasts were dropped");
  assert.ok(pulls > 0, "b pulled to fill the gaps");
});

test("selections reach the other clients", async () => {
  const token = `tmp-${randomUUID()}`;
  const a = await open(token, ["websocket"]);
  const b = await open(token, ["websocket"]);
  const got = new Promise<CodespaceClientEvents["selection"]>((resolve) => b.once("selection", resolve));
  await a.setSelection([{ anchor: 0, head: 0 }]);
  assert.deepEqual(await got, { sender: a.id, selections: [{ anchor: 0, head: 0 }] });
});

test("a refused handshake rejects connect() with the server's code", async () => {
  await assert.rejects(
    CodespaceClient.connect(url, "", { transports: ["websocket"] }),
    (err: unknown) => err instanceof CodespaceClientError && err.code === "missing_token",
  );
  await assert.rejects(
    CodespaceClient.connect(url, "some-site-token", { transports: ["polling"] }),
    (err: unknown) => err instanceof CodespaceClientError && err.code === "auth_unavailable",
  );
});
