/**
 * The demo page (served at `/` by the server, or as the static build `dist/web/standalone.html`):
 * opens the codespace of `?token=` (or a new `tmp-` one, written into the URL), shows a share link,
 * a CodeMirror editor bound to the codespace, the participants and the connection state.
 *
 * - A handshake refused for a passing reason (`auth_unavailable`, `store_unavailable`, ...) is
 *   retried by itself with a growing delay (1 s, 2 s, 4 s, ... up to 30 s), with a "Retry now" button.
 * - A server that cannot be reached: after a few seconds a banner says whether it is down or refuses
 *   this page's origin (CORS), and which `CORS_ORIGIN` to set.
 * - View-only connections show a banner; temporary (`tmp-`) codespaces show when they expire.
 * - The user's name (kept in localStorage) is sent as `auth.name` and shown to the others.
 * - A language selector (Python by default; kept in localStorage) and a "New codespace" button.
 *
 * `?server=<origin>` connects to another server than the page's origin (the static build's default
 * is http://localhost:8888; that server then needs CORS_ORIGIN to allow the page's origin).
 *
 * For tests and curious people, `window.codespace` holds `{ client, view, presence, language }`.
 */
import { basicSetup } from "codemirror";
import { EditorView } from "@codemirror/view";
import { Compartment, type Extension } from "@codemirror/state";
import { css } from "@codemirror/lang-css";
import { html } from "@codemirror/lang-html";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { CodespaceClient } from "./codespace-client.js";
import { codespaceCollab, participantColor } from "./codemirror.js";
import { PresenceTracker, type PresenceUser } from "./presence.js";
import type { CodespaceClientError } from "./errors.js";
import { TMP_TOKEN_PREFIX } from "../protocol/constants.js";

declare global {
  interface Window {
    codespace?: { client: CodespaceClient; view: EditorView; presence: PresenceTracker; language: string };
  }
}

/** The editor languages offered (values of the #language select). */
const LANGUAGES: Record<string, () => Extension> = {
  python: () => python(),
  javascript: () => javascript(),
  typescript: () => javascript({ typescript: true }),
  html: () => html(),
  css: () => css(),
  json: () => json(),
  markdown: () => markdown(),
};
const DEFAULT_LANGUAGE = "python";
/** Handshake refusals that may go away by themselves: retried with a backoff. */
const RETRIED = new Set(["auth_unavailable", "store_unavailable", "too_many_connections", "shutting_down", "internal_error", "connect_failed"]);
/** After this long without a connection, the page looks for the reason (server down, CORS), ms. */
const DIAGNOSE_AFTER_MS = 3000;
const NAME_KEY = "codespace.name";
const LANGUAGE_KEY = "codespace.language";

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
}

function randomId(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function stored(key: string): string {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return ""; // storage disabled (file:// in some browsers, privacy modes)
  }
}

function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not kept: fine */
  }
}

const params = new URLSearchParams(location.search);
let token = params.get("token") ?? "";
if (!token) {
  token = `${TMP_TOKEN_PREFIX}${randomId()}`;
  params.set("token", token);
  history.replaceState(null, "", `${location.pathname}?${params}${location.hash}`);
}
const server = params.get("server") ?? (location.protocol.startsWith("http") ? location.origin : "http://localhost:8888");

const statusEl = $("status");
const shareEl = $<HTMLInputElement>("share");
const copyEl = $("copy");
const newEl = $("new");
const nameEl = $<HTMLInputElement>("name");
const languageEl = $<HTMLSelectElement>("language");
const usersEl = $("participants");
const editorEl = $("editor");
const errorEl = $("error");
const readonlyEl = $("readonly");
const problemEl = $("problem");
const problemTextEl = $("problem-text");
const retryEl = $("retry");
const expiryEl = $("expiry");

shareEl.value = location.href;
copyEl.addEventListener("click", () => {
  shareEl.select();
  void navigator.clipboard?.writeText(shareEl.value).then(
    () => (copyEl.textContent = "Copied"),
    () => document.execCommand("copy"),
  );
});
newEl.addEventListener("click", () => {
  const next = new URLSearchParams(params);
  next.set("token", `tmp-${randomId()}`);
  location.assign(`${location.pathname}?${next}`);
});

function setStatus(status: string, text = status): void {
  statusEl.dataset.status = status;
  statusEl.textContent = text;
}

const STATUS_TEXT: Record<string, string> = {
  connecting: "connecting…",
  connected: "connected",
  disconnected: "reconnecting…",
  closed: "closed",
};

function renderUsers(users: readonly PresenceUser[]): void {
  usersEl.replaceChildren(
    ...users.map((u) => {
      const li = document.createElement("li");
      li.dataset.user = u.id;
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.backgroundColor = u.self ? "#777" : participantColor(u.id);
      li.append(dot, `${u.name ?? `guest ${u.id.slice(0, 4)}`}${u.self ? " (you)" : ""}${u.mode === "view_only" ? " · viewing" : ""}`);
      return li;
    }),
  );
}

function showError(err: CodespaceClientError | Error): void {
  errorEl.textContent = err.message;
  errorEl.hidden = false;
}

/** The banner above the editor: a problem with the connection, optionally with "Retry now". */
function showProblem(text: string | (string | Node)[], retry = false): void {
  problemTextEl.replaceChildren(...(typeof text === "string" ? [text] : text));
  retryEl.hidden = !retry;
  problemEl.hidden = false;
}

function hideProblem(): void {
  problemEl.hidden = true;
}

function code(text: string): HTMLElement {
  const el = document.createElement("code");
  el.textContent = text;
  return el;
}

// ---- language --------------------------------------------------------------------------------

const languageSlot = new Compartment();
let language = LANGUAGES[stored(LANGUAGE_KEY)] ? stored(LANGUAGE_KEY) : DEFAULT_LANGUAGE;
languageEl.value = language;
languageEl.addEventListener("change", () => {
  language = LANGUAGES[languageEl.value] ? languageEl.value : DEFAULT_LANGUAGE;
  store(LANGUAGE_KEY, language);
  const cs = window.codespace;
  if (cs) {
    cs.view.dispatch({ effects: languageSlot.reconfigure(LANGUAGES[language]!()) });
    cs.language = language;
  }
});

// ---- name ------------------------------------------------------------------------------------

nameEl.value = stored(NAME_KEY);
nameEl.addEventListener("change", () => {
  const name = nameEl.value.trim().slice(0, 40);
  nameEl.value = name;
  store(NAME_KEY, name);
  const client = window.codespace?.client;
  if (!client || client.status === "closed") return;
  // sent at the next handshake: reconnect now (the client keeps and resends unsent edits)
  (client.socket.auth as Record<string, unknown>).name = name || undefined;
  client.socket.io.engine?.close();
});

// ---- expiry of temporary codespaces ------------------------------------------------------------

function describeTtl(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? "" : "s"}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? "" : "s"}`;
  if (seconds >= 60) return `${Math.round(seconds / 60)} minutes`;
  return `${seconds} seconds`;
}

/** "Temporary codespace: deleted 1 hour after the last edit (at 14:32 if nobody edits)". */
function showExpiry(client: CodespaceClient): void {
  const ttl = client.lastConnected?.ttl;
  if (!client.codespace.startsWith("tmp-") || typeof ttl !== "number") {
    expiryEl.hidden = true;
    return;
  }
  const at = new Date(Date.now() + ttl * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  expiryEl.textContent = `Temporary codespace: deleted ${describeTtl(ttl)} after the last edit (at ${at} if nobody edits).`;
  expiryEl.hidden = false;
}

// ---- connection problems -----------------------------------------------------------------------

/**
 * Still not connected after a while: tell a server that is down from one that refuses this page's
 * origin (CORS: the Socket.IO endpoint answers without allowing the origin, while a no-cors request
 * gets through).
 */
async function diagnose(): Promise<void> {
  const target = new URL(server).origin;
  const probe = `${target}/socket.io/?EIO=4&transport=polling&t=${Date.now()}`;
  const allowed = await fetch(probe, { mode: "cors" }).then(() => true, () => false);
  if (allowed || window.codespace) return;
  const reachable = await fetch(`${target}/healthz`, { mode: "no-cors" }).then(() => true, () => false);
  if (window.codespace) return;
  // a page opened from disk sends the origin "null" (location.origin may say "file://")
  const origin = location.protocol === "file:" || !location.origin || location.origin === "null" ? "null" : location.origin;
  if (reachable && target !== location.origin) {
    showProblem([
      `The server at ${target} is running but does not accept pages from ${origin === "null" ? "a file opened from disk (origin null)" : origin} (CORS). Start it with `,
      code(`CORS_ORIGIN=${origin}`),
      " (or ",
      code("CORS_ORIGIN=*"),
      " for any page). Still trying…",
    ]);
  } else {
    showProblem([`Cannot reach the server at ${target}. Is it running (`, code("npm start"), ")? Still trying…"]);
  }
}

let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let countdown: ReturnType<typeof setInterval> | undefined;

function stopRetryTimers(): void {
  clearTimeout(retryTimer);
  clearInterval(countdown);
  retryTimer = countdown = undefined;
}

retryEl.addEventListener("click", () => {
  stopRetryTimers();
  void open();
});

/** A refused handshake: retried by itself with a backoff when the reason may pass. */
function failed(err: CodespaceClientError | Error): void {
  const code = (err as CodespaceClientError).code ?? "";
  setStatus("closed", "not connected");
  if (!RETRIED.has(code)) {
    showProblem(`Could not open the codespace: ${err.message}`, true);
    return;
  }
  const delay = Math.min(30_000, 1000 * 2 ** attempt++);
  let left = Math.round(delay / 1000);
  const render = (): void => showProblem(`Could not open the codespace: ${err.message}. Retrying in ${left} s…`, true);
  render();
  countdown = setInterval(() => {
    left = Math.max(0, left - 1);
    render();
  }, 1000);
  retryTimer = setTimeout(() => {
    stopRetryTimers();
    void open();
  }, delay);
}

// ---- the codespace ---------------------------------------------------------------------------

async function open(): Promise<void> {
  setStatus("connecting", STATUS_TEXT.connecting);
  const slow = setTimeout(() => void diagnose(), DIAGNOSE_AFTER_MS);
  let client: CodespaceClient;
  try {
    client = await CodespaceClient.connect(server, token, { name: nameEl.value.trim() || undefined });
  } catch (err) {
    clearTimeout(slow);
    failed(err as CodespaceClientError);
    return;
  }
  clearTimeout(slow);
  attempt = 0;
  hideProblem();
  errorEl.hidden = true;
  const presence = new PresenceTracker(client);
  const view = new EditorView({
    doc: client.text,
    extensions: [basicSetup, languageSlot.of(LANGUAGES[language]!()), codespaceCollab(client, { presence })],
    parent: editorEl,
  });
  window.codespace = { client, view, presence, language };
  setStatus(client.status, STATUS_TEXT[client.status]);
  readonlyEl.hidden = client.mode !== "view_only";
  showExpiry(client);
  renderUsers(presence.users);
  presence.on("change", ({ users }) => renderUsers(users));
  client.on("change", () => showExpiry(client));
  client.on("status", ({ status }) => {
    if (statusEl.dataset.status !== "expired") setStatus(status, STATUS_TEXT[status]);
    if (status === "disconnected") usersEl.classList.add("stale");
    else usersEl.classList.remove("stale");
    if (status === "connected") readonlyEl.hidden = client.mode !== "view_only";
  });
  client.on("error", showError);
  client.on("reset", ({ reason, dropped, kept }) => {
    const carried = kept > 0 ? `; ${kept} edit(s) typed offline were kept` : "";
    if (dropped > 0) showError(new Error(`the document was reloaded from the server (${reason}); ${dropped} unconfirmed edit(s) dropped${carried}`));
  });
  client.on("expired", () => {
    // The codespace's stored state is gone: start over on a fresh (empty) one with the same token.
    setStatus("expired", "the codespace expired; reopening…");
    presence.close();
    view.destroy();
    window.codespace = undefined;
    setTimeout(() => void open(), 1000);
  });
  view.focus();
}

void open();
