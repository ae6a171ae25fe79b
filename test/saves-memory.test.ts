/**
 * Durable saves on the embedded in-memory store (no REDIS_URL), with the built-in HTTP sink
 * (SAVE_URL, SAVE_SECRET) and a real HTTP server as the site: debounced saves with valid
 * signatures and idempotency keys, the TTL held while the site is down and normal expiry after the
 * save, and a graceful shutdown that saves what is owed. Share tokens made by Python authenticate.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { closeAll, connectEditor, editOnce, withTimeout, type Editor } from "./helpers/editors.js";
import { pythonShareToken } from "./helpers/share-token.js";
import { connectSocket } from "./helpers/socket.js";
import { startStubSite, type StubSite } from "./helpers/stub-site.js";

const SECRET = "memory-saves-secret";
let site: StubSite;
before(async () => (site = await startStubSite()));
after(async () => site?.close());

const token = (cs: string) => pythonShareToken(SECRET, `${cs}:${Math.floor(Date.now() / 1000) + 3600}:edit`);
const env = (extra: Record<string, string> = {}) => ({
  SHARE_TOKEN_SECRET: SECRET,
  SAVE_URL: site.url,
  SAVE_SECRET: site.secret,
  SAVE_DEBOUNCE_MS: "100",
  SAVE_MAX_WAIT_MS: "400",
  SAVE_TIMEOUT_MS: "300",
  SAVE_LEASE_MS: "1000",
  SAVE_RETRY_MAX_MS: "300",
  ...extra,
});

test("saves reach the site signed, with growing versions, the last one equal to what everyone sees", { timeout: 60_000 }, async () => {
  const srv = await startInProcessServer(env());
  const cs = randomUUID();
  const editors: Editor[] = [];
  try {
    editors.push(await connectEditor(srv.url, token(cs), "x", "websocket"), await connectEditor(srv.url, token(cs), "y", "polling"));
    for (let i = 0; i < 20; i++) await withTimeout(Promise.all(editors.map((ed) => editOnce(ed, 10_000))), 20_000, `round ${i}`);
    const { version, text } = editors[0]!.client;
    assert.equal(version, 40);
    await site.waitFor(() => site.savesOf(cs).at(-1)?.version === version, 15_000, `version ${version} saved`);
    const saves = site.savesOf(cs);
    assert.equal(saves.at(-1)!.code, text);
    for (let i = 1; i < saves.length; i++) assert.ok(saves[i]!.version > saves[i - 1]!.version, "versions sent only grow");
    assert.ok(saves.length < 40, `${saves.length} saves for 40 commits: not debounced`);
    for (const s of saves) assert.equal(s.idempotencyKey, `${cs}:${s.epoch}:${s.version}`);
    assert.ok(site.requests.filter((r) => r.codespace === cs).every((r) => r.signatureOk), "a request without a valid signature");
  } finally {
    closeAll(editors);
    await srv.close();
  }
});

test("TTL held while the site is down: still there with the latest code; saved once it is back, then expired normally", { timeout: 60_000 }, async () => {
  const srv = await startInProcessServer(env({ CODESPACE_EXPIRE_UPDATE: "1" }));
  const cs = randomUUID();
  let ed: Editor | undefined;
  try {
    ed = await connectEditor(srv.url, token(cs), "z", "websocket");
    site.mode = { status: 503 };
    site.loadMode = "ok";
    for (let i = 0; i < 3; i++) await editOnce(ed, 10_000);
    const { text, version } = ed.client;
    // well past the 1 s TTL, the site refusing every attempt
    await site.waitFor(() => site.requests.filter((r) => r.codespace === cs && r.status === 503).length >= 3, 15_000, "three refused saves");
    await new Promise((r) => setTimeout(r, 1500));
    const probe = await connectSocket(srv.url, token(cs));
    probe.socket.close();
    assert.equal(probe.connected.code, text, "the unsaved codespace was lost");
    assert.equal(probe.connected.version, version);
    const expired = new Promise<void>((resolve) => ed!.client.on("expired", () => resolve()));
    site.mode = "ok";
    await site.waitFor(() => site.savesOf(cs).at(-1)?.version === version, 15_000, "the save after recovery");
    assert.equal(site.savesOf(cs).at(-1)!.code, text);
    await withTimeout(expired, 10_000, "expired after the save");
  } finally {
    site.mode = "ok";
    site.loadMode = undefined;
    ed?.client.close();
    await srv.close();
  }
});

test("graceful shutdown saves what is owed (long debounce: nothing saved before)", { timeout: 60_000 }, async () => {
  const srv = await startInProcessServer(env({ SAVE_DEBOUNCE_MS: "60000", SAVE_MAX_WAIT_MS: "60000" }));
  const cs = randomUUID();
  const ed = await connectEditor(srv.url, token(cs), "w", "websocket");
  for (let i = 0; i < 3; i++) await editOnce(ed, 10_000);
  const { text, version } = ed.client;
  assert.equal(site.savesOf(cs).length, 0);
  ed.client.close();
  await srv.close();
  assert.deepEqual(site.savesOf(cs).map((s) => [s.version, s.code]), [[version, text]]);
});
