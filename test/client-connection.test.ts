/**
 * The client's connection layer alone (client/connection.ts), on a real in-process server: the
 * `connected` payload and status changes, acks as promises, broadcasts as `update`, a refused
 * handshake, a request cut by a disconnect, a server-side disconnect retried, `reconnect()`.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { CodespaceConnection, type ConnectionEvents } from "../client/connection.js";
import type { ConnectedPayload, InsertValueBroadcast } from "../protocol/events.js";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { connectSocket } from "./helpers/socket.js";

let srv: InProcessServer;
const open: CodespaceConnection[] = [];
before(async () => {
  srv = await startInProcessServer();
});
after(async () => {
  for (const c of open) c.close();
  await srv?.close();
});

function connection(token: string, opts: ConstructorParameters<typeof CodespaceConnection>[2] = {}): CodespaceConnection {
  const c = new CodespaceConnection(srv.url, token, { transports: ["websocket"], ...opts });
  open.push(c);
  return c;
}

/** The next `event` of `c`. */
function next<K extends keyof ConnectionEvents>(c: CodespaceConnection, event: K): Promise<ConnectionEvents[K]> {
  return new Promise((resolve) => c.once(event, resolve));
}

test("connected payload, status changes, insert_value and pull acks, broadcasts as update", { timeout: 30_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const a = connection(token);
  const statuses: string[] = [];
  a.on("status", (e) => statuses.push(e.status));
  assert.equal(a.status, "connecting");
  const p: ConnectedPayload = await next(a, "connected");
  assert.equal(p.codespace, token);
  assert.equal(a.status, "connected");
  assert.ok(a.ready);
  assert.deepEqual(statuses, ["connected"]);

  const broadcast = next(a, "update");
  const ack = await a.insertValue({ epoch: p.epoch, version: p.version, updates: [{ clientID: "c1", changes: [{ from: 0, to: 0, insert: "hi" }] }] });
  assert.deepEqual(ack, { ok: true, version: 1 });
  const u: InsertValueBroadcast = await broadcast;
  assert.equal(u.version, 1);
  assert.equal(u.sender, p.id);
  assert.deepEqual(u.changes, [{ from: 0, to: 0, insert: "hi" }]);

  const pulled = await a.pull({ epoch: p.epoch, version: 0 });
  assert.ok(pulled.ok && "updates" in pulled);
  assert.equal(pulled.updates.length, 1);
  const refused = await a.insertValue({ epoch: "not-the-epoch", version: 1, updates: [{ clientID: "c1", changes: [] }] });
  assert.equal(refused.ok, false);
});

test("with batches: true, a multi-update commit is one updates event, unbatched in version order", { timeout: 30_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const a = connection(token, { batches: true });
  assert.equal((a.socket.auth as { batches?: boolean }).batches, true);
  const p: ConnectedPayload = await next(a, "connected");
  let singles = 0;
  a.on("update", () => singles++);
  const batch = next(a, "updates");
  const updates = [
    { clientID: "c1", changes: [{ from: 0, to: 0, insert: "hi" }] },
    { clientID: "c1", changes: [{ from: 2, to: 2, insert: "!" }] },
  ];
  assert.deepEqual(await a.insertValue({ epoch: p.epoch, version: p.version, updates }), { ok: true, version: 2 });
  assert.deepStrictEqual(await batch, updates.map((u, i) => ({ version: i + 1, clientID: "c1", sender: p.id, changes: u.changes })));
  assert.equal(singles, 0);
});

test("a refused handshake is a fatal error with the server's code and closes the connection", { timeout: 30_000 }, async () => {
  const c = connection(`tmp-${"x".repeat(65)}`);
  const { error, fatal } = await next(c, "error");
  assert.equal(error.code, "invalid_token");
  assert.equal(fatal, true);
  assert.equal(c.status, "closed");
});

test("a request cut by a disconnect rejects with disconnected (socket.io-client timeout())", { timeout: 30_000 }, async () => {
  const c = connection(`tmp-${randomUUID()}`, { socketOptions: { reconnection: false } });
  const p = await next(c, "connected");
  const pending = c.pull({ epoch: p.epoch, version: 0 });
  const disconnected = next(c, "disconnected");
  c.socket.io.engine.close();
  await assert.rejects(pending, (err: { code?: string }) => err.code === "disconnected");
  assert.ok((await disconnected).reason.length > 0);
  assert.equal(c.status, "disconnected");
});

test("an ack that does not come within ackTimeoutMs rejects with disconnected", { timeout: 30_000 }, async () => {
  const c = connection(`tmp-${randomUUID()}`, { ackTimeoutMs: 5 });
  const p = await next(c, "connected");
  const pending = c.pull({ epoch: p.epoch, version: 0 });
  // The server runs in this process: keep the loop busy past the timeout, so the timer (timers
  // phase) fires before the server can even read the request (poll phase).
  const until = Date.now() + 50;
  while (Date.now() < until);
  await assert.rejects(pending, (err: { code?: string; message?: string }) => err.code === "disconnected" && /no acknowledgement/.test(err.message ?? ""));
});

test("a disconnect by the server is retried; reconnect() opens a new connection", { timeout: 30_000 }, async () => {
  const token = `tmp-${randomUUID()}`;
  const c = connection(token);
  const first = await next(c, "connected");
  const again = next(c, "connected");
  const [server] = await srv.server.io.of("/codespace").in(first.id).fetchSockets();
  assert.ok(server, "the server does not know the socket");
  server.disconnect();
  assert.equal((await next(c, "disconnected")).reason, "io server disconnect");
  const second = await again;
  assert.notEqual(second.id, first.id);
  const third = next(c, "connected");
  c.reconnect();
  assert.notEqual((await third).id, second.id);
  c.close();
  assert.equal(c.status, "closed");
  assert.equal(c.socket.connected, false);
  assert.equal(c.ready, false);
});

test("a reconnect refused with codespace_unavailable (the site cannot load it yet) is retried, not fatal", { timeout: 30_000 }, async () => {
  // a site hook set: any token opens codespace `cs` to edit; its load fails while `siteDown`
  const cs = `site-${randomUUID()}`;
  let siteDown = false;
  let onExpired!: () => void;
  const expired = new Promise<void>((resolve) => (onExpired = resolve));
  const site = await startInProcessServer(
    { LOG_LEVEL: "error", CODESPACE_EXPIRE_UPDATE: "1" },
    {
      hooks: {
        authenticate: () => ({ codespace: cs, mode: "edit" }),
        load: async () => {
          if (siteDown) throw new Error("site down");
          return { code: "from the site" };
        },
        onExpired: ({ codespace }) => codespace === cs && onExpired(),
      },
    },
  );
  const conn = new CodespaceConnection(site.url, "any-token", { transports: ["websocket"] });
  const firstConnected = next(conn, "connected");
  const errors: { code: string; fatal: boolean }[] = [];
  conn.on("error", ({ error, fatal }) => errors.push({ code: error.code, fatal }));
  try {
    const first = await firstConnected;
    assert.equal(first.code, "from the site");
    // a second socket keeps the codespace held by the server while the client is away, so that its
    // expiry is reported (onExpired fires where a codespace is held)
    const witness = await connectSocket(site.url, "any-token");
    // offline while the codespace expires; the site is down when the client comes back
    conn.socket.io.reconnection(false);
    const gone = new Promise<void>((resolve) => conn.socket.once("disconnect", () => resolve()));
    conn.socket.io.engine.close();
    await gone;
    await expired;
    witness.socket.close();
    siteDown = true;
    const refused = new Promise<void>((resolve) => conn.socket.once("connect_error", () => resolve()));
    conn.socket.io.reconnection(true);
    conn.socket.connect();
    await refused;
    assert.deepEqual(errors, [], "not reported as fatal");
    assert.notEqual(conn.status, "closed");
    siteDown = false;
    const again = await next(conn, "connected");
    assert.equal(again.code, "from the site", "reloaded once the site answers");
  } finally {
    conn.close();
    await site.server.close();
  }
});
