/**
 * Commits cost their changes, not the document: UTF-16 positions become UTF-8 byte offsets through
 * per-node byte lengths cached on CodeMirror's text tree (server/document/utf8-patch.ts), and the
 * Redis commit script applies the patch itself. Non-ASCII text of every width (2-, 3- and 4-byte
 * characters, surrogate pairs) before, inside and after the edits; real Redis, two server processes.
 */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { ChangeSet, Text } from "@codemirror/state";
import { applyChanges } from "../server/document/changes.js";
import { LINE_SEPARATOR } from "../protocol/wire.js";
import { textOf } from "../server/document/doc-cache.js";
import { composeAll, utf8Length, utf8Offset, utf8Patch } from "../server/document/utf8-patch.js";
import { CodespaceClient } from "../client/codespace-client.js";
import { startRedis } from "./helpers/redis-server.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { withTimeout } from "./helpers/editors.js";

const UNITS = ["a", "b", " ", "\n", "\r", "é", "中", "😀", "𝒳"];
const str = (t: Text): string => t.sliceString(0, t.length, LINE_SEPARATOR);
/** Moves `pos` off the middle of a surrogate pair. */
function snap(s: string, pos: number): number {
  const c = s.charCodeAt(pos - 1);
  return pos > 0 && pos < s.length && c >= 0xd800 && c <= 0xdbff ? pos - 1 : pos;
}
/** Applies a UTF-8 patch to the UTF-8 bytes of `base` (what the commit script does). */
function applyPatch(base: string, p: ReturnType<typeof utf8Patch>): string {
  const b = Buffer.from(base);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const c of p.changes) {
    parts.push(b.subarray(pos, c.from), Buffer.from(c.insert));
    assert.equal(Buffer.byteLength(c.insert), c.insertBytes);
    pos = c.to;
  }
  parts.push(b.subarray(pos));
  const out = Buffer.concat(parts);
  assert.equal(out.length, p.bytes);
  return out.toString();
}

test("utf8Offset and utf8Length equal Buffer.byteLength on every version of an edited text", () => {
  const big = Array.from({ length: 3000 }, (_, i) => `line ${i} ${UNITS[i % UNITS.length]!.repeat(i % 5)}`).join("\n");
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.nat(6), fc.string({ unit: fc.constantFrom(...UNITS), maxLength: 8 })), { minLength: 1, maxLength: 30 }),
      (edits) => {
        let doc = textOf(big);
        const sets: ChangeSet[] = [];
        const base = doc;
        for (const [at, del, insert] of edits) {
          const s = str(doc);
          const from = snap(s, at % (s.length + 1));
          const to = snap(s, Math.min(s.length, from + del));
          const cs = ChangeSet.of([{ from, to, insert }], doc.length, LINE_SEPARATOR);
          sets.push(cs);
          doc = applyChanges(doc, cs);
          const now = str(doc);
          assert.equal(utf8Length(doc), Buffer.byteLength(now));
          for (const p of [0, from, Math.min(now.length, from + insert.length), now.length]) {
            const q = snap(now, p);
            assert.equal(utf8Offset(doc, q), Buffer.byteLength(now.slice(0, q)));
          }
        }
        // the composed patch of all the edits turns the base's bytes into the last version's
        assert.equal(applyPatch(str(base), utf8Patch(base, composeAll(sets))), str(doc));
      },
    ),
    { numRuns: 60 },
  );
});

test("two processes on Redis: non-ASCII edits around multi-byte characters store the clients' text, without sending it per commit", { timeout: 120_000 }, async () => {
  const redis = await startRedis();
  const servers = [await startInProcessServer({ REDIS_URL: redis.url }), await startInProcessServer({ REDIS_URL: redis.url })];
  const raw = redis.client();
  const token = "tmp-utf8-" + Math.random().toString(36).slice(2);
  const clients: CodespaceClient[] = [];
  try {
    for (const s of servers) clients.push(await CodespaceClient.connect(s.url, token, { transports: ["websocket"] }));
    const [a, b] = clients as [CodespaceClient, CodespaceClient];
    // ~200 KB of UTF-8: lines mixing 1-, 2-, 3- and 4-byte characters
    const initial = Array.from({ length: 4000 }, (_, i) => `// ${i} é 中文 😀 𝒳 ${"x".repeat(i % 20)}`).join("\n");
    a.applyLocal([{ from: 0, to: 0, insert: initial }]);
    await withTimeout(a.whenSynced(), 30_000, "initial text synced");
    await withTimeout(b.waitForVersion(a.version), 30_000, "b has the initial text");
    const stats = async () => Number(/total_net_input_bytes:(\d+)/.exec(await raw.info("stats"))![1]);
    const bytesBefore = await stats();
    const versionBefore = a.version;

    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const inserts = ["é", "😀", "中", "x", "\n", "ab😀cd", "𝒳é"];
    for (let round = 0; round < 150; round++) {
      for (const c of [a, b]) {
        const s = c.text;
        // positions just before, just after and between multi-byte characters, anywhere in the text
        const from = snap(s, rand(s.length + 1));
        const to = snap(s, Math.min(s.length, from + rand(4)));
        c.applyLocal([{ from, to, insert: inserts[rand(inserts.length)]! }]);
      }
      if (round % 10 === 9) await Promise.all([a.whenSynced(), b.whenSynced()]);
    }
    await withTimeout(Promise.all([a.whenSynced(), b.whenSynced()]), 60_000, "edits synced");
    const last = Math.max(a.version, b.version);
    await withTimeout(Promise.all([a.waitForVersion(last), b.waitForVersion(last)]), 60_000, "both at the last version");
    assert.equal(a.text, b.text);
    assert.match(a.text, /😀/);
    const key = token;
    assert.equal(await raw.hget(key, "code"), a.text, "stored code equals the clients' text");
    assert.equal(Number(await raw.hget(key, "version")), last);

    const commits = last - versionBefore;
    assert.ok(commits >= 20, `only ${commits} commits`);
    const perCommit = ((await stats()) - bytesBefore) / commits;
    const docBytes = Buffer.byteLength(a.text);
    assert.ok(perCommit < docBytes / 20, `${Math.round(perCommit)} bytes into Redis per commit for a ${docBytes}-byte text`);
  } finally {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
    await redis.stop();
  }
});
