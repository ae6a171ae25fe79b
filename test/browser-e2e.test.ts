/**
 * End to end in a real browser: headless Chromium (Debian package `chromium`, driven by
 * playwright-core; never downloaded) opens the demo page served by two server processes sharing one
 * Redis. Two pages type into the same codespace concurrently with real keyboard input and end with
 * identical text equal to the Redis `code` field; a remote cursor is drawn; a page survives its
 * server process being restarted on the same port.
 *
 * Writes a screenshot of the two pages side by side to `.tmp/demo-e2e.png`.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { Redis } from "ioredis";
import { freePort, startRedis, type RedisServerHandle } from "./helpers/redis-server.js";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";
// The page's `window.codespace` (declared by the demo page's script).
import type {} from "../client/demo.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
/** Bound of every wait on a page condition, ms. */
const WAIT_MS = 15_000;

let redis: RedisServerHandle;
let db: Redis;
let serverA: ServerProcess;
let serverB: ServerProcess;
let portB: number;
let profileDir: string;
let browser: BrowserContext;
let pageA: Page;
let pageB: Page;
const token = `tmp-e2e-${randomUUID().slice(0, 8)}`;

interface PageState {
  status: string;
  text: string;
  viewText: string;
  version: number;
  pending: number;
  id: string;
  users: string[];
}

/** What a page's `window.codespace` holds right now. */
function stateOf(page: Page): Promise<PageState | null> {
  return page.evaluate(() => {
    const cs = window.codespace;
    if (!cs) return null;
    return {
      status: cs.client.status,
      text: cs.client.text,
      viewText: cs.view.state.doc.toString(),
      version: cs.client.version,
      pending: cs.client.pending,
      id: cs.client.id,
      users: cs.presence.users.map((u) => u.id),
    };
  });
}

/** Waits until the page is connected, in sync (nothing pending) and, if given, at `version` or later. */
async function waitSynced(page: Page, minVersion = 0): Promise<void> {
  await page.waitForFunction(
    (v) => {
      const cs = window.codespace;
      return !!cs && cs.client.status === "connected" && cs.client.pending === 0 && cs.client.version >= v &&
        cs.view.state.doc.toString() === cs.client.text;
    },
    minVersion,
    { timeout: WAIT_MS, polling: 50 },
  );
}

/** Waits until both pages are synced at the version Redis holds; returns the stored code. */
async function converge(): Promise<string> {
  await Promise.all([waitSynced(pageA), waitSynced(pageB)]);
  const [code, version] = await db.hmget(token, "code", "version");
  await Promise.all([waitSynced(pageA, Number(version)), waitSynced(pageB, Number(version))]);
  const [a, b] = await Promise.all([stateOf(pageA), stateOf(pageB)]);
  assert.ok(a && b);
  assert.equal(a.viewText, b.viewText, "the two editors differ");
  assert.equal(a.viewText, code, "the editors differ from the Redis code field");
  return code ?? "";
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.setViewportSize({ width: 720, height: 420 });
  page.on("pageerror", (err) => console.error(`[page ${url}] ${err.message}`));
  await page.goto(`${url}/?token=${token}`);
  await page.waitForFunction(() => window.codespace?.client.status === "connected", undefined, { timeout: WAIT_MS });
  return page;
}

/** Types `text` with real key presses ("\n" is Enter). */
async function typeText(page: Page, text: string): Promise<void> {
  await page.keyboard.type(text, { delay: 15 });
}

before(async () => {
  const { buildWeb } = (await import(pathToFileURL(join(REPO_ROOT, "scripts", "build-web.mjs")).href)) as {
    buildWeb(opts?: { minify?: boolean }): Promise<unknown>;
  };
  await buildWeb();
  redis = await startRedis();
  db = redis.client();
  portB = await freePort();
  [serverA, serverB] = await Promise.all([
    startServerProcess({ REDIS_URL: redis.url }),
    startServerProcess({ REDIS_URL: redis.url, PORT: String(portB) }),
  ]);
  profileDir = await mkdtemp(join(tmpdir(), "e2e-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  pageA = await openPage(serverA.url);
  pageB = await openPage(serverB.url);
});

after(async () => {
  await browser?.close().catch(() => {});
  await Promise.allSettled([serverA?.stop(), serverB?.stop()]);
  await redis?.stop();
  if (profileDir) await rm(profileDir, { recursive: true, force: true });
});

describe("two browsers on two server processes", { timeout: 60_000 }, () => {
  test("the page at / serves the demo and the bundle", async () => {
    const res = await fetch(`${serverA.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await res.text(), /assets\/demo\.js/);
    const js = await fetch(`${serverA.url}/assets/codespace.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    assert.equal((await fetch(`${serverA.url}/assets/..%2Fpackage.json`)).status, 404);
    // the share link is the page's URL with the token
    assert.equal(await pageA.inputValue("#share"), `${serverA.url}/?token=${token}`);
  });

  test("presence: each page lists both participants", async () => {
    for (const page of [pageA, pageB]) {
      await page.waitForFunction(() => window.codespace?.presence.users.length === 2, undefined, { timeout: WAIT_MS });
      await page.waitForFunction(() => document.querySelectorAll("#participants li").length === 2, undefined, { timeout: WAIT_MS });
    }
    const [a, b] = await Promise.all([stateOf(pageA), stateOf(pageB)]);
    assert.deepEqual(new Set(a!.users), new Set([a!.id, b!.id]));
    assert.deepEqual(new Set(b!.users), new Set([a!.id, b!.id]));
  });

  test("concurrent real typing converges on the Redis code; remote cursors are drawn", async () => {
    // A seeds a function (the editor closes the brace itself); then A writes its body while B
    // types at the start of the document, at the same time.
    await pageA.click(".cm-content");
    await typeText(pageA, "function greet(name) {\n");
    await converge();
    await pageB.click(".cm-content");
    await pageB.keyboard.press("Control+Home");
    await Promise.all([
      typeText(pageA, "return `hello ${name}`;"),
      (async () => {
        await typeText(pageB, "// shared with B\n// edited live!");
        await pageB.keyboard.press("Backspace");
        await pageB.keyboard.press("Enter");
      })(),
    ]);
    // then both again at once: A below the function, B inside the header comment
    await pageA.keyboard.press("Control+End");
    await Promise.all([
      (async () => {
        await typeText(pageA, "\ngreet(\"x\")");
        await pageA.keyboard.press("Backspace");
        await typeText(pageA, ");");
      })(),
      (async () => {
        await pageB.keyboard.press("ArrowUp");
        await pageB.keyboard.press("End");
        await typeText(pageB, " (by two)");
      })(),
    ]);
    const code = await converge();
    assert.ok(code.includes("// shared with B\n"), code);
    assert.ok(code.includes("// edited live (by two)\n"), code);
    assert.ok(!code.includes("live!"), code);
    assert.ok(code.includes("function greet(name) {"), code);
    assert.ok(code.includes("return `hello ${name}`;"), code);
    assert.ok(code.includes("greet(\"x\");"), code);

    // each page draws the other's cursor, labelled, in that participant's colour
    const [a, b] = await Promise.all([stateOf(pageA), stateOf(pageB)]);
    await pageB.locator(`.cm-remote-cursor[data-user="${a!.id}"] .cm-remote-cursor-label`).waitFor({ state: "visible" });
    await pageA.locator(`.cm-remote-cursor[data-user="${b!.id}"] .cm-remote-cursor-label`).waitFor({ state: "visible" });
    const box = await pageB.locator(`.cm-remote-cursor[data-user="${a!.id}"]`).boundingBox();
    assert.ok(box && box.height > 0, "the remote cursor has no size");

    // screenshot of the two pages side by side
    await pageA.mouse.move(0, 0);
    const shots = await Promise.all([pageA.screenshot(), pageB.screenshot()]);
    const sheet = await browser.newPage();
    await sheet.setViewportSize({ width: 1456, height: 436 });
    await sheet.setContent(
      `<body style="margin:0;background:#999;display:flex;gap:16px;padding:8px">` +
        shots.map((s) => `<img src="data:image/png;base64,${s.toString("base64")}" width="720" height="420">`).join("") +
        `</body>`,
    );
    await sheet.waitForFunction(() => Array.from(document.images).every((i) => i.complete));
    // docs/demo.png comes from test/demo-page.test.ts (UPDATE_DEMO_PNG=1)
    const out = join(REPO_ROOT, ".tmp", "demo-e2e.png");
    await mkdir(join(out, ".."), { recursive: true });
    await writeFile(out, await sheet.screenshot());
    await sheet.close();
  });

  test("a page survives its server process restarting on the same port", async () => {
    const before = await stateOf(pageB);
    await serverB.stop("SIGTERM");
    await pageB.waitForFunction(() => window.codespace?.client.status === "disconnected", undefined, { timeout: WAIT_MS });
    await pageB.waitForFunction(() => document.getElementById("status")?.dataset.status === "disconnected");
    // A sees B leave (graceful shutdown disconnects its sockets)
    await pageA.waitForFunction((id) => !window.codespace?.presence.users.some((u) => u.id === id), before!.id, { timeout: WAIT_MS });

    // both keep typing: B while offline (queued), A through the other process
    await pageB.keyboard.press("Control+End");
    await typeText(pageB, "\n// typed offline");
    await pageA.keyboard.press("Control+Home");
    await typeText(pageA, "/* meanwhile */ ");

    serverB = await startServerProcess({ REDIS_URL: redis.url, PORT: String(portB) });
    await waitSynced(pageB);
    const code = await converge();
    assert.ok(code.includes("// typed offline"), code);
    assert.ok(code.startsWith("/* meanwhile */ "), code);
    // same editor, same page: no reload happened, and presence has B's new connection on both pages
    const after = await stateOf(pageB);
    assert.notEqual(after!.id, before!.id);
    await pageA.waitForFunction((id) => window.codespace?.presence.users.some((u) => u.id === id), after!.id, { timeout: WAIT_MS });
    assert.equal(await pageB.evaluate(() => document.getElementById("status")?.dataset.status), "connected");
  });
});

describe("the embedded default (no Redis, one process) and the static build", { timeout: 60_000 }, () => {
  let solo: ServerProcess;
  before(async () => {
    // CORS_ORIGIN only matters to the file:// static page; `/` is same-origin
    solo = await startServerProcess({ CORS_ORIGIN: "*" });
  });
  after(() => solo?.stop());

  test("a page without ?token opens a tmp- codespace; its share link brings a second page in", async () => {
    const first = await browser.newPage();
    const second = await browser.newPage();
    try {
      await first.goto(`${solo.url}/`);
      await first.waitForFunction(() => window.codespace?.client.status === "connected", undefined, { timeout: WAIT_MS });
      const link = await first.inputValue("#share");
      assert.match(link, /\?token=tmp-[0-9a-f]{18}$/);
      assert.equal(first.url(), link);

      // the static build, opened from disk, connects to the server given in ?server=
      const file = pathToFileURL(join(REPO_ROOT, "dist", "web", "standalone.html")).href;
      await second.goto(`${file}?server=${encodeURIComponent(solo.url)}&token=${new URL(link).searchParams.get("token")}`);
      await second.waitForFunction(() => window.codespace?.client.status === "connected", undefined, { timeout: WAIT_MS });
      for (const p of [first, second]) {
        await p.waitForFunction(() => document.querySelectorAll("#participants li").length === 2, undefined, { timeout: WAIT_MS });
      }

      await first.click(".cm-content");
      await second.click(".cm-content");
      await Promise.all([typeText(first, "one two three"), typeText(second, "four five six")]);
      const synced = (p: Page) =>
        p.waitForFunction(() => window.codespace?.client.pending === 0, undefined, { timeout: WAIT_MS, polling: 50 });
      await Promise.all([synced(first), synced(second)]);
      const version = await first.evaluate(() => window.codespace!.client.version);
      await second.waitForFunction((v) => window.codespace!.client.version >= v, version, { timeout: WAIT_MS, polling: 50 });
      const v2 = await second.evaluate(() => window.codespace!.client.version);
      await first.waitForFunction((v) => window.codespace!.client.version >= v, v2, { timeout: WAIT_MS, polling: 50 });
      const [t1, t2] = await Promise.all([first, second].map((p) => p.evaluate(() => window.codespace!.view.state.doc.toString())));
      assert.equal(t1, t2);
      assert.equal(t1!.length, "one two three".length + "four five six".length);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
