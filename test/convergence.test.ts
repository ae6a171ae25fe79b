/**
 * Several writers (the client library) on two server processes sharing one Redis edit one codespace
 * at once, with connections cut mid-way (reconnect, pull, resubmit). Every client and the stored
 * `code` converge, and every surviving token written by anyone is there exactly once: nothing
 * acknowledged is lost, nothing is applied twice.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CodespaceClient } from "../client/index.js";
import { countOverlaps } from "./helpers/overlap.js";
import { startServersOnRedis, type ServersOnRedis } from "./helpers/servers-on-redis.js";

let backend: ServersOnRedis;
before(async () => {
  backend = await startServersOnRedis(2, { RATE_LIMIT_EVENTS: "1000000" /* replays type faster than people */ });
});
after(async () => {
  await backend?.stop();
});

/** Positions where a token may go: the start, or right after a `|` (tokens end with `|`). */
function boundaries(text: string): number[] {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "|") out.push(i + 1);
  return out;
}

test("concurrent writers on two processes with dropped connections converge, nothing lost or doubled", async () => {
  const token = "tmp-convergence";
  const transports = [["websocket"], ["polling"], ["polling", "websocket"], ["websocket"]] as const;
  const clients = await Promise.all(
    transports.map((t, i) => CodespaceClient.connect(backend.servers[i % 2]!.url, token, { transports: [...t] })),
  );
  const overlaps = clients.map((c) => countOverlaps(c.socket));
  const drops = clients.map((c) => {
    const seen = { disconnects: 0, reconnects: 0 };
    c.socket.on("disconnect", () => seen.disconnects++);
    c.socket.io.on("reconnect", () => seen.reconnects++);
    return seen;
  });
  const rng = fc.sample(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { seed: 42, numRuns: 10_000 });
  let r = 0;
  const next = () => rng[r++ % rng.length]!;
  const expected = new Set<string>();
  const EDITS = 120;
  try {
    for (let n = 0; n < EDITS; n++) {
      for (let c = 0; c < clients.length; c++) {
        const client = clients[c]!;
        const mine = [...expected].filter((t) => t.startsWith(`c${c}.`) && client.text.includes(t));
        if (mine.length > 2 && next() < 0.25) {
          const t = mine[Math.floor(next() * mine.length)]!;
          const at = client.text.indexOf(t);
          client.applyLocal([{ from: at, to: at + t.length, insert: "" }]);
          expected.delete(t);
        } else {
          const t = `c${c}.${n}|`;
          const spots = boundaries(client.text);
          const at = spots[Math.floor(next() * spots.length)]!;
          client.applyLocal([{ from: at, to: at, insert: t }]);
          expected.add(t);
        }
      }
      if (n === 40 || n === 80) {
        // cut two connections at the transport level: they reconnect, pull and resubmit (the
        // second cut waits for the first reconnection, or it would cut nothing)
        await Promise.all(clients.slice(0, 2).map((c) => (c.socket.connected ? undefined : new Promise((r) => c.socket.once("connect", () => r(undefined))))));
        clients[0]!.socket.io.engine.close();
        clients[1]!.socket.io.engine.close();
      }
      if (n % 5 === 0) await new Promise((res) => setImmediate(res));
    }
    await Promise.all(clients.map((c) => c.whenSynced()));
    const version = Math.max(...clients.map((c) => c.version));
    await Promise.all(clients.map((c) => c.waitForVersion(version)));
    const stored = await backend.redis.client().hget(token, "code");
    for (const c of clients) assert.equal(c.text, stored);
    const tokens = stored!.split("|").filter(Boolean).map((t) => `${t}|`);
    assert.equal(tokens.length, new Set(tokens).size, "no token applied twice");
    assert.deepEqual(new Set(tokens), expected, "exactly the surviving tokens");
    // The scenario happened: the two cut clients lost their connection twice and came back, and
    // the writers' batches overlapped (the server rebased some over others').
    for (const c of [0, 1]) {
      assert.ok(drops[c]!.disconnects >= 2 && drops[c]!.reconnects >= 2, `client ${c}: ${JSON.stringify(drops[c])}`);
      assert.equal(clients[c]!.socket.connected, true);
    }
    const overlapped = overlaps.reduce((n, o) => n + o.count(), 0);
    assert.ok(overlapped > 0, "no batch overlapped another writer's update");
  } finally {
    for (const c of clients) c.close();
  }
});
