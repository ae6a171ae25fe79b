/**
 * The declared per-event pipelines of the `/codespace` namespace (server/namespace/): the order of
 * the stages (shutdown guard, rate limit, edit mode, validation, handler) decides which error a
 * request gets, and that order must stay as documented. A real Socket.IO server with the real
 * namespace wiring (attachNamespace), a test-controlled shutdown flag and a minimal auth middleware.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { CodespaceRegistry } from "../server/codespace-registry.js";
import { loadConfig } from "../server/config.js";
import { createLogger } from "../server/logger.js";
import { createMetrics } from "../server/metrics.js";
import { attachNamespace, broadcaster, type CodespaceNamespace } from "../server/namespace/index.js";
import { SocketRateLimiter } from "../server/rate-limit.js";
import { MemoryStore } from "../server/store/memory-store.js";
import { connectSocket, emitAck, nextEvent, type ClientSocket } from "./helpers/socket.js";

const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", RATE_LIMIT_EVENTS: "2", RATE_LIMIT_WINDOW_MS: "600000", RATE_LIMIT_DISCONNECT_AFTER: "0" });
let io: Server;
let url: string;
let shuttingDown = false;
const metrics = createMetrics({ defaultMetrics: false });

before(async () => {
  const http = createHttpServer();
  io = new Server(http);
  const nsp = io.of("/codespace") as CodespaceNamespace;
  const store = new MemoryStore({ historyLength: config.historyLength });
  const registry = new CodespaceRegistry(store, config, { broadcast: broadcaster(nsp) });
  nsp.use((socket, next) => {
    // the token names the mode: tmp-edit-... or tmp-view_only-...
    const token = (socket.handshake.auth as { token: string }).token;
    socket.data = { codespace: token, mode: token.startsWith("tmp-edit-") ? "edit" : "view_only" };
    next();
  });
  attachNamespace(nsp, { config, registry, logger: createLogger("silent"), isShuttingDown: () => shuttingDown, metrics, rateLimiter: new SocketRateLimiter(config) });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => io.close(() => r()));
});

async function socketAs(mode: "edit" | "view_only"): Promise<ClientSocket> {
  const { socket } = await connectSocket(url, `tmp-${mode}-${Math.random()}`);
  return socket;
}

const codeOf = (res: unknown): string | undefined => (res as { ok: boolean; error?: { code: string } }).error?.code;

test("shutdown is checked first: every event, even an invalid or forbidden one, is refused shutting_down", async () => {
  const viewer = await socketAs("view_only");
  try {
    shuttingDown = true;
    assert.equal(codeOf(await emitAck(viewer, "insert_value", { garbage: true })), "shutting_down");
    assert.equal(codeOf(await emitAck(viewer, "create_selection", null)), "shutting_down");
    assert.equal(codeOf(await emitAck(viewer, "pull", { epoch: "x", version: 0 })), "shutting_down");
    const err = nextEvent(viewer, "operation_error");
    viewer.emit("insert_value", { garbage: true } as never); // no callback
    const { event, error } = await err;
    assert.deepEqual([event, error.code], ["insert_value", "shutting_down"]);
  } finally {
    shuttingDown = false;
    viewer.close();
  }
});

test("then the rate limit (write events only), then edit mode, then validation", async () => {
  const viewer = await socketAs("view_only");
  try {
    // RATE_LIMIT_EVENTS=2: a view-only socket's first two writes are forbidden, the third rate_limited
    assert.equal(codeOf(await emitAck(viewer, "insert_value", { garbage: true })), "forbidden");
    assert.equal(codeOf(await emitAck(viewer, "create_selection", { garbage: true })), "forbidden");
    assert.equal(codeOf(await emitAck(viewer, "insert_value", { garbage: true })), "rate_limited");
    // pull is not rate limited and allowed in view-only mode: it reaches validation
    for (let i = 0; i < 3; i++) assert.equal(codeOf(await emitAck(viewer, "pull", { garbage: true })), "invalid_payload");
  } finally {
    viewer.close();
  }
  const editor = await socketAs("edit");
  try {
    assert.equal(codeOf(await emitAck(editor, "insert_value", { garbage: true })), "invalid_payload");
  } finally {
    editor.close();
  }
  // the observers counted every refused insert_value by code, the rate limit by event
  const text = await metrics.registry.metrics();
  assert.match(text, /^codespace_updates_rejected_total\{code="forbidden"\} 1$/m);
  assert.match(text, /^codespace_updates_rejected_total\{code="rate_limited"\} 1$/m);
  assert.match(text, /^codespace_updates_rejected_total\{code="invalid_payload"\} 1$/m);
  assert.match(text, /^codespace_rate_limited_total\{event="insert_value"\} 1$/m);
});
