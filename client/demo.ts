/**
 * The demo page (served at `/` by the server, or as the static build `dist/web/standalone.html`):
 * opens the codespace of `?token=` (or a new `tmp-` one, written into the URL), shows a share link,
 * a CodeMirror editor bound to the codespace, the participants and the connection state.
 *
 * `?server=<origin>` connects to another server than the page's origin (the static build's default
 * is http://localhost:8888; that server then needs CORS_ORIGIN to allow the page's origin).
 *
 * For tests and curious people, `window.codespace` holds `{ client, view, presence }`.
 */
import { basicSetup } from "codemirror";
import { EditorView } from "@codemirror/view";
import { javascript } from "@codemirror/lang-javascript";
import { CodespaceClient } from "./codespace-client.js";
import { codespaceCollab, participantColor } from "./codemirror.js";
import { PresenceTracker, type PresenceUser } from "./presence.js";
import type { CodespaceClientError } from "./errors.js";
import { TMP_TOKEN_PREFIX } from "../protocol/constants.js";

declare global {
  interface Window {
    codespace?: { client: CodespaceClient; view: EditorView; presence: PresenceTracker };
  }
}

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el;
}

function randomId(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
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
const shareEl = $("share") as HTMLInputElement;
const copyEl = $("copy");
const usersEl = $("participants");
const editorEl = $("editor");
const errorEl = $("error");

shareEl.value = location.href;
copyEl.addEventListener("click", () => {
  shareEl.select();
  void navigator.clipboard?.writeText(shareEl.value).then(
    () => (copyEl.textContent = "Copied"),
    () => document.execCommand("copy"),
  );
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

async function open(): Promise<void> {
  setStatus("connecting", STATUS_TEXT.connecting);
  let client: CodespaceClient;
  try {
    client = await CodespaceClient.connect(server, token);
  } catch (err) {
    setStatus("closed", `could not open the codespace: ${(err as Error).message}`);
    return;
  }
  errorEl.hidden = true;
  const presence = new PresenceTracker(client);
  const view = new EditorView({
    doc: client.text,
    extensions: [basicSetup, javascript(), codespaceCollab(client, { presence })],
    parent: editorEl,
  });
  window.codespace = { client, view, presence };
  setStatus(client.status, STATUS_TEXT[client.status]);
  renderUsers(presence.users);
  presence.on("change", ({ users }) => renderUsers(users));
  client.on("status", ({ status }) => {
    if (statusEl.dataset.status !== "expired") setStatus(status, STATUS_TEXT[status]);
    if (status === "disconnected") usersEl.classList.add("stale");
    else usersEl.classList.remove("stale");
  });
  client.on("error", showError);
  client.on("reset", ({ reason, dropped }) => {
    if (dropped > 0) showError(new Error(`the document was reloaded from the server (${reason}); ${dropped} unsent edit(s) dropped`));
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
