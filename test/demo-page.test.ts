/**
 * The demo page as a product, in headless Chromium (Debian `chromium` driven by playwright-core)
 * against a real server process (embedded default, MAX_DOC_LENGTH=2000) and a stub site API:
 * Python by default and a language selector; a name kept in localStorage and shown to the others;
 * the expiry of a temporary codespace; a "New codespace" button; cursor labels that are neither
 * clipped on the first line nor over the text; "this paste is too large" keeping the other edits;
 * a view-only banner; retries by itself (and on "Retry now") after `auth_unavailable`; a clear
 * CORS_ORIGIN message for a page on another origin.
 *
 * With UPDATE_DEMO_PNG=1 it writes the screenshot docs/demo.png (otherwise .tmp/demo.png).
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";
import { REPO_ROOT, startServerProcess, type ServerProcess } from "./helpers/server-process.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const WAIT_MS = 30_000;
const LIMIT = 2000;

let api: StubApi;
let srv: ServerProcess;
let browser: Browser;
const contexts: BrowserContext[] = [];

before(async () => {
  const { buildWeb } = (await import(pathToFileURL(join(REPO_ROOT, "scripts", "build-web.mjs")).href)) as {
    buildWeb(opts?: { minify?: boolean }): Promise<string>;
  };
  await buildWeb();
  api = await startStubApi({ viewer: { body: { uuid: "doc-viewed", mode: "view_only" } } });
  srv = await startServerProcess({ API_BASE_URL: api.baseUrl, MAX_DOC_LENGTH: String(LIMIT) });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close().catch(() => {});
  await srv?.stop();
  await api?.close();
});

/** A page in its own context (its own localStorage), like another person's browser. */
async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 760, height: 440 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on("pageerror", (err) => console.error(`[page] ${err.message}`));
  return page;
}

async function connected(page: Page): Promise<void> {
  await page.waitForFunction(() => window.codespace?.client.status === "connected", undefined, { timeout: WAIT_MS });
}

async function synced(page: Page): Promise<void> {
  await page.waitForFunction(() => window.codespace?.client.status === "connected" && window.codespace.client.pending === 0, undefined, { timeout: WAIT_MS, polling: 50 });
}

async function setName(page: Page, name: string): Promise<void> {
  await page.fill("#name", name);
  await page.press("#name", "Enter");
  await page.locator("#name").evaluate((el) => el.dispatchEvent(new Event("change")));
}

async function participants(page: Page): Promise<string[]> {
  return page.locator("#participants li").allTextContents();
}

describe("the demo page", { timeout: 120_000 }, () => {
  let a: Page;
  let b: Page;
  let pair: Promise<{ a: Page; b: Page }> | undefined;

  /**
   * Two people ("Ada" and "Grace") in one tmp- codespace: the pages the first test opened, or, when
   * a test runs without it (alone, or in another order), two opened here the same way.
   */
  function twoPages(): Promise<{ a: Page; b: Page }> {
    return (pair ??= (async () => {
      const first = await newPage();
      await first.goto(`${srv.url}/`);
      await connected(first);
      await setName(first, "Ada");
      const second = await newPage();
      await second.goto(await first.inputValue("#share"));
      await connected(second);
      await setName(second, "Grace");
      await first.waitForFunction(() => Array.from(document.querySelectorAll("#participants li")).some((li) => li.textContent === "Grace"), undefined, { timeout: WAIT_MS });
      return { a: first, b: second };
    })());
  }

  test("Python by default, the expiry of a tmp- codespace, names shown to the others and kept", async () => {
    a = await newPage();
    await a.goto(`${srv.url}/`);
    await connected(a);
    assert.equal(await a.inputValue("#language"), "python");
    assert.equal(await a.evaluate(() => window.codespace!.language), "python");
    assert.match(await a.locator("#expiry").innerText(), /^Temporary codespace: deleted 1 hour after the last edit \(at \d\d:\d\d if nobody edits\)\.$/);
    assert.ok(await a.locator("#readonly").isHidden());

    await setName(a, "Ada");
    b = await newPage();
    await b.goto(await a.inputValue("#share"));
    await connected(b);
    await setName(b, "Grace");
    await b.waitForFunction(() => Array.from(document.querySelectorAll("#participants li")).some((li) => li.textContent === "Ada"), undefined, { timeout: WAIT_MS });
    await a.waitForFunction(() => Array.from(document.querySelectorAll("#participants li")).some((li) => li.textContent === "Grace"), undefined, { timeout: WAIT_MS });
    assert.ok((await participants(a)).includes("Ada (you)"));

    // kept in localStorage, with the language
    await a.selectOption("#language", "javascript");
    assert.equal(await a.evaluate(() => window.codespace!.language), "javascript");
    await a.reload();
    await connected(a);
    assert.equal(await a.inputValue("#name"), "Ada");
    assert.equal(await a.inputValue("#language"), "javascript");
    await a.selectOption("#language", "python");
    await b.waitForFunction(() => Array.from(document.querySelectorAll("#participants li")).some((li) => li.textContent === "Ada"), undefined, { timeout: WAIT_MS });
    pair ??= Promise.resolve({ a, b });
  });

  test("cursor labels: not clipped on the first line, never over the text", async () => {
    const { a, b } = await twoPages();
    await a.click(".cm-content");
    await a.keyboard.type("def greet(name):\n    return f\"hello {name}\"\n\nprint(greet(\"world\"))", { delay: 5 });
    await synced(a);
    await b.waitForFunction(() => window.codespace!.view.state.doc.lines >= 4, undefined, { timeout: WAIT_MS });
    for (const line of [1, 3]) {
      await b.bringToFront();
      await b.click(".cm-content");
      await b.keyboard.press("Control+Home");
      for (let i = 1; i < line; i++) await b.keyboard.press("ArrowDown");
      await b.keyboard.press("End");
      const id = await b.evaluate(() => window.codespace!.client.id);
      const label = a.locator(`.cm-remote-cursor[data-user="${id}"] .cm-remote-cursor-label`);
      await a.waitForFunction(
        ([uid, n]) => {
          const el = document.querySelector(`.cm-remote-cursor[data-user="${uid}"]`);
          const lines = Array.from(document.querySelectorAll(".cm-line"));
          return !!el && lines[(n as number) - 1]?.contains(el);
        },
        [id, line] as const,
        { timeout: WAIT_MS },
      ).catch(async (err: Error) => assert.fail(`${err.message}: ${await a.evaluate(() => document.querySelector(".cm-content")!.innerHTML)} / b's id ${id}`));
      assert.equal(await label.innerText(), "Grace");
      const check = await a.evaluate((uid) => {
        const labelEl = document.querySelector(`.cm-remote-cursor[data-user="${uid}"] .cm-remote-cursor-label`)!;
        const l = labelEl.getBoundingClientRect();
        const scroller = document.querySelector(".cm-scroller")!.getBoundingClientRect();
        const overlaps: string[] = [];
        for (const lineEl of Array.from(document.querySelectorAll(".cm-line"))) {
          const walker = document.createTreeWalker(lineEl, NodeFilter.SHOW_TEXT);
          for (let t = walker.nextNode(); t; t = walker.nextNode()) {
            if (labelEl.contains(t)) continue;
            const range = document.createRange();
            range.selectNodeContents(t);
            for (const r of Array.from(range.getClientRects())) {
              const x = Math.min(l.right, r.right) - Math.max(l.left, r.left);
              const y = Math.min(l.bottom, r.bottom) - Math.max(l.top, r.top);
              if (x > 0.5 && y > 0.5) overlaps.push(t.textContent ?? "");
            }
          }
        }
        // the line number of the cursor's line stands level with its text, not with the label
        const cursorLine = labelEl.closest(".cm-line")!;
        const text = document.createRange();
        text.selectNodeContents(cursorLine);
        const textRects = Array.from(text.getClientRects()).filter((r) => !labelEl.contains(document.elementFromPoint(r.left + 1, r.top + 1)));
        const textBottom = Math.max(...textRects.map((r) => r.bottom), cursorLine.getBoundingClientRect().bottom - 1);
        const lineNo = String(Array.from(document.querySelectorAll(".cm-line")).indexOf(cursorLine) + 1);
        const numberEl = Array.from(document.querySelectorAll(".cm-lineNumbers .cm-gutterElement")).find((g) => g.textContent === lineNo)!;
        const numberText = document.createRange();
        numberText.selectNodeContents(numberEl);
        const n = numberText.getBoundingClientRect();
        return { top: l.top, scrollerTop: scroller.top, height: l.height, overlaps, numberBottom: n.bottom, textBottom, labelBottom: l.bottom };
      }, id);
      assert.ok(
        Math.abs(check.numberBottom - check.textBottom) <= 4,
        `line ${line}: the line number (bottom ${check.numberBottom}) is level with the text (bottom ${check.textBottom}), not with the label (bottom ${check.labelBottom})`,
      );
      assert.ok(check.height > 5, "the label has a size");
      assert.ok(check.top >= check.scrollerTop, `line ${line}: the label is clipped (${check.top} < ${check.scrollerTop})`);
      assert.deepEqual(check.overlaps, [], `line ${line}: the label covers text`);
    }
  });

  test("a paste over MAX_DOC_LENGTH: 'this paste is too large (limit N characters)', the other edits are kept", async () => {
    const { a, b } = await twoPages();
    // some confirmed text first, so the edit made at its start and the paste at its end stay apart
    // (adjacent insertions compose into one change, which would be dropped as a whole)
    await a.evaluate(() => {
      const v = window.codespace!.view;
      v.dispatch({ changes: { from: v.state.doc.length, insert: "\nprint(1)" } });
    });
    await synced(a);
    const before = await a.evaluate(() => window.codespace!.view.state.doc.toString());
    await a.evaluate((n) => {
      const v = window.codespace!.view;
      v.dispatch({ changes: { from: 0, insert: "# kept\n" } });
      v.dispatch({ changes: { from: v.state.doc.length, insert: "x".repeat(n) } });
    }, LIMIT + 100);
    await a.waitForFunction(() => /this paste is too large/.test(document.getElementById("error")!.textContent ?? ""), undefined, { timeout: WAIT_MS });
    assert.match(await a.locator("#error").innerText(), new RegExp(`this paste is too large \\(limit ${LIMIT} characters\\)`));
    await synced(a);
    assert.equal(await a.evaluate(() => window.codespace!.view.state.doc.toString()), `# kept\n${before}`);
    await b.waitForFunction((t) => window.codespace!.view.state.doc.toString() === t, `# kept\n${before}`, { timeout: WAIT_MS });
  });

  test("screenshot of two pages (docs/demo.png with UPDATE_DEMO_PNG=1)", async () => {
    const { a, b } = await twoPages();
    await a.bringToFront();
    await a.click(".cm-content");
    await a.keyboard.press("Control+Home");
    await a.keyboard.press("ArrowDown");
    await a.keyboard.press("End");
    await b.bringToFront();
    await b.click(".cm-content");
    await b.keyboard.press("Control+End");
    await b.keyboard.press("Home");
    for (let i = 0; i < 5; i++) await b.keyboard.press("Shift+ArrowRight");
    await a.locator(".cm-remote-cursor-label").first().waitFor({ state: "visible" });
    await b.locator(".cm-remote-cursor-label").first().waitFor({ state: "visible" });
    await a.evaluate(() => (document.getElementById("error")!.hidden = true));
    const shots = await Promise.all([a.screenshot(), b.screenshot()]);
    const sheet = await newPage();
    await sheet.setViewportSize({ width: 1544, height: 456 });
    await sheet.setContent(
      `<body style="margin:0;background:#999;display:flex;gap:8px;padding:8px">` +
        shots.map((s) => `<img src="data:image/png;base64,${s.toString("base64")}" width="760" height="440">`).join("") +
        `</body>`,
    );
    await sheet.waitForFunction(() => Array.from(document.images).every((i) => i.complete));
    const out = process.env.UPDATE_DEMO_PNG === "1" ? join(REPO_ROOT, "docs", "demo.png") : join(REPO_ROOT, ".tmp", "demo.png");
    await mkdir(join(out, ".."), { recursive: true });
    await writeFile(out, await sheet.screenshot());
  });

  test("a new codespace from the button", async () => {
    const a = await newPage(); // its own page: the shared pair stays in its codespace
    await a.goto(`${srv.url}/`);
    await connected(a);
    const old = await a.evaluate(() => window.codespace!.client.codespace);
    await a.click("#new");
    await a.waitForFunction((t) => window.codespace?.client.status === "connected" && window.codespace.client.codespace !== t, old, { timeout: WAIT_MS });
    assert.equal(await a.evaluate(() => window.codespace!.view.state.doc.toString()), "");
    assert.match(a.url(), /\?token=tmp-[0-9a-f]{18}$/);
  });

  test("view-only: a visible banner, typing changes nothing", async () => {
    const p = await newPage();
    await p.goto(`${srv.url}/?token=viewer`);
    await connected(p);
    assert.match(await p.locator("#readonly").innerText(), /View only/);
    assert.ok(await p.locator("#readonly").isVisible());
    assert.ok(await p.locator("#expiry").isHidden(), "not a temporary codespace");
    await p.click(".cm-content");
    await p.keyboard.type("nope");
    assert.equal(await p.evaluate(() => window.codespace!.view.state.doc.toString()), "");
  });

  test("auth_unavailable: retries by itself with a backoff, and at once on 'Retry now'", { timeout: 120_000 }, async () => {
    api.setToken("flaky", { status: 503 });
    const p = await newPage();
    await p.goto(`${srv.url}/?token=flaky`);
    await p.waitForFunction(() => /Retrying in \d+ s/.test(document.getElementById("problem")!.textContent ?? ""), undefined, { timeout: WAIT_MS });
    assert.ok(await p.locator("#retry").isVisible(), "a retry button");
    const calls = api.calls.filter((c) => c.includes("/flaky/")).length;
    await p.waitForFunction(
      () => /Retrying in \d+ s/.test(document.getElementById("problem")!.textContent ?? ""),
      undefined,
      { timeout: WAIT_MS },
    );
    api.setToken("flaky", { body: { uuid: "doc-flaky", mode: "edit" } });
    await connected(p); // by itself, after the backoff
    assert.ok(api.calls.filter((c) => c.includes("/flaky/")).length > calls, "retried");
    assert.ok(await p.locator("#problem").isHidden(), `the banner is gone once connected: ${await p.locator("#problem").innerText()}`);

    api.setToken("flaky2", { status: 503 });
    const q = await newPage();
    await q.goto(`${srv.url}/?token=flaky2`);
    await q.locator("#retry").waitFor({ state: "visible", timeout: WAIT_MS });
    api.setToken("flaky2", { body: { uuid: "doc-flaky2", mode: "edit" } });
    await q.click("#retry");
    await connected(q);
  });

  test("a page on another origin that the server does not allow: a message naming CORS_ORIGIN", async () => {
    const p = await newPage();
    const file = pathToFileURL(join(REPO_ROOT, "dist", "web", "standalone.html")).href;
    await p.goto(`${file}?server=${encodeURIComponent(srv.url)}&token=tmp-cors-check`);
    await p
      .waitForFunction(() => /CORS_ORIGIN=null/.test(document.getElementById("problem")!.textContent ?? ""), undefined, { timeout: WAIT_MS })
      .catch(async (err: Error) => assert.fail(`${err.message}; the banner says: ${await p.locator("#problem").innerText()}`));
    assert.match(await p.locator("#problem").innerText(), /is running but does not accept pages from a file opened from disk/);
  });
});
