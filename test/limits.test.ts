/**
 * Limits (docs/operations.md, "Limits"): the per-socket rate limit of insert_value and
 * create_selection (`rate_limited`, then a disconnect on repeated abuse), the per-process cap of
 * connections per codespace (`too_many_connections`), and messages above MAX_MESSAGE_BYTES, which
 * Socket.IO answers by closing the connection: the reference client neither sends a batch above its
 * `maxMessageBytes` nor resends one forever after repeated closes (`message_too_large`).
 * In-process server, in-memory store, small limits. Document length, updates per batch, changes per
 * update and selections per message are covered by payloads.test.ts.
 */
import { after, before, describe, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { CodespaceServer } from "../server/index.js";
import { CodespaceClient } from "../client/codespace-client.js";
import type { CodespaceClientError } from "../client/errors.js";
import { startInProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, emitAck, expectConnectError, nextEvent, TRANSPORTS, type ClientSocket } from "./helpers/socket.js";

const RATE_EVENTS = 5;
const DISCONNECT_AFTER = 3;
const MAX_CONNECTIONS = 2;
const MAX_MESSAGE_BYTES = 4096;

type Srv = CodespaceServer;
let srv: Srv;
let url: string;

before(async () => {
  ({ server: srv, url } = await startInProcessServer({
    RATE_LIMIT_EVENTS: String(RATE_EVENTS),
    // a window far longer than the test: no point comes back while it runs
    RATE_LIMIT_WINDOW_MS: "600000",
    RATE_LIMIT_DISCONNECT_AFTER: String(DISCONNECT_AFTER),
    MAX_CONNECTIONS_PER_CODESPACE: String(MAX_CONNECTIONS),
    MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
  }));
});

after(async () => {
  await srv?.close();
});

const tmp = (label: string) => `tmp-${label}-${randomUUID()}`;

/** The codespace's state as a fresh socket sees it. */
async function snapshot(codespace: string): Promise<{ code: string; version: number }> {
  const { socket, connected } = await connectSocket(url, codespace);
  socket.close();
  return { code: connected.code, version: connected.version };
}

describe("per-socket rate limit", () => {
  test("insert_value and create_selection share RATE_LIMIT_EVENTS points; the next is rate_limited and changes nothing; pull is not limited", async () => {
    const cs = tmp("rate");
    const { socket, connected } = await connectSocket(url, cs);
    try {
      let version = connected.version;
      for (let i = 0; i < RATE_EVENTS - 1; i++) {
        const ack = await emitAck(socket, "insert_value", {
          epoch: connected.epoch,
          version,
          updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "x" }] }],
        });
        assert.deepEqual(ack, { ok: true, version: version + 1 });
        version++;
      }
      assert.deepEqual(await emitAck(socket, "create_selection", { selections: [{ anchor: 0, head: 1 }] }), { ok: true });
      const refused = await emitAck(socket, "insert_value", {
        epoch: connected.epoch,
        version,
        updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "y" }] }],
      });
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.error.code, "rate_limited");
      const sel = await emitAck(socket, "create_selection", { selections: [{ anchor: 0, head: 0 }] });
      assert.equal(!sel.ok && sel.error.code, "rate_limited");
      const pulled = await emitAck(socket, "pull", { epoch: connected.epoch, version: 0 });
      assert.equal(pulled.ok, true);
      assert.deepEqual(await snapshot(cs), { code: "x".repeat(RATE_EVENTS - 1), version: RATE_EVENTS - 1 });
    } finally {
      socket.close();
    }
  });

  test("without an ack callback the refusal is an operation_error with code rate_limited", async () => {
    const { socket } = await connectSocket(url, tmp("rate-noack"));
    try {
      for (let i = 0; i < RATE_EVENTS; i++) await emitAck(socket, "create_selection", { selections: [{ anchor: 0, head: 0 }] });
      const err = nextEvent(socket, "operation_error");
      socket.emit("create_selection", { selections: [{ anchor: 0, head: 0 }] });
      assert.deepEqual((await err).event, "create_selection");
      assert.equal((await err).error.code, "rate_limited");
    } finally {
      socket.close();
    }
  });

  test("RATE_LIMIT_DISCONNECT_AFTER refusals disconnect the socket (after answering the last one); other sockets stay", async () => {
    const cs = tmp("abuse");
    const { socket } = await connectSocket(url, cs);
    const { socket: bystander } = await connectSocket(url, cs);
    try {
      const sel = { selections: [{ anchor: 0, head: 0 }] };
      for (let i = 0; i < RATE_EVENTS; i++) assert.deepEqual(await emitAck(socket, "create_selection", sel), { ok: true });
      const gone = nextEvent<string>(socket, "disconnect");
      const forced = async () => (await srv.metrics.forcedDisconnects.get()).values.find((v) => v.labels.reason === "rate_limit")?.value ?? 0;
      const forcedBefore = await forced();
      for (let i = 0; i < DISCONNECT_AFTER - 1; i++) {
        const res = await emitAck(socket, "create_selection", sel);
        assert.equal(!res.ok && res.error.code, "rate_limited", `refusal ${i + 1}`);
      }
      // the last refusals arrive in one burst, before the disconnect: one abuse, one disconnect counted
      for (let i = 0; i < 3; i++) socket.emit("create_selection", sel, () => {});
      assert.equal(await gone, "io server disconnect");
      assert.equal((await forced()) - forcedBefore, 1, "one forced disconnect (and one warn line) per socket");
      assert.equal(bystander.connected, true);
      assert.deepEqual(await emitAck(bystander, "create_selection", sel), { ok: true });
    } finally {
      socket.close();
      bystander.close();
    }
  });
});

describe("connections per codespace", () => {
  for (const transports of TRANSPORTS) {
    test(`over ${transports.join("+")}: the connection beyond MAX_CONNECTIONS_PER_CODESPACE is refused with too_many_connections; a freed slot is reusable; other codespaces unaffected`, async () => {
      const cs = tmp("cap");
      const held: ClientSocket[] = [];
      try {
        for (let i = 0; i < MAX_CONNECTIONS; i++) held.push((await connectSocket(url, cs, transports)).socket);
        const err = await expectConnectError(url, cs, transports);
        assert.equal(err.data?.code, "too_many_connections");
        assert.match(err.message, new RegExp(String(MAX_CONNECTIONS)));
        const other = await connectSocket(url, tmp("cap-other"), transports);
        other.socket.close();
        const leaving = held.pop()!;
        const left = nextEvent(leaving, "disconnect");
        leaving.close();
        await left;
        // the server sees the close asynchronously: retry the handshake until the slot is free
        let again: Awaited<ReturnType<typeof connectSocket>> | undefined;
        for (let attempt = 0; attempt < 50 && !again; attempt++) {
          again = await connectSocket(url, cs, transports).catch((e: { data?: { code?: string } }) => {
            assert.equal(e.data?.code, "too_many_connections");
            return undefined;
          });
        }
        assert.ok(again, "the freed slot was never reusable");
        held.push(again.socket);
      } finally {
        for (const s of held) s.close();
      }
    });
  }

  test("simultaneous handshakes never exceed the cap", async () => {
    const cs = tmp("cap-race");
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => connectSocket(url, cs)));
    const ok = results.filter((r) => r.status === "fulfilled");
    try {
      assert.ok(ok.length <= MAX_CONNECTIONS, `${ok.length} sockets joined`);
      assert.ok(ok.length >= 1);
      // the handshakes really competed for the slots: every other one was turned away by the cap
      // (refused at the handshake, or disconnected right after it when two finished in one tick)
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      for (const r of refused) {
        const e = r.reason as { data?: { code?: string }; message: string };
        assert.ok(e.data?.code === "too_many_connections" || /disconnected/.test(e.message), String(e.message));
      }
      const room = srv.io.of("/codespace").adapter.rooms.get(`codespace:${cs}`);
      assert.ok((room?.size ?? 0) <= MAX_CONNECTIONS);
    } finally {
      for (const r of ok) (r as PromiseFulfilledResult<{ socket: ClientSocket }>).value.socket.close();
    }
  });
});

describe("messages above MAX_MESSAGE_BYTES", () => {
  for (const transports of TRANSPORTS) {
    test(`over ${transports.join("+")}: Socket.IO closes the connection; nothing is applied; the server keeps serving`, async () => {
      const cs = tmp("big");
      const { socket, connected } = await connectSocket(url, cs, transports);
      const gone = nextEvent<string>(socket, "disconnect");
      socket.emit("insert_value", {
        epoch: connected.epoch,
        version: 0,
        updates: [{ clientID: "c", changes: [{ from: 0, to: 0, insert: "z".repeat(MAX_MESSAGE_BYTES * 2) }] }],
      });
      assert.match(await gone, /^transport (close|error)$/);
      socket.close();
      assert.deepEqual(await snapshot(cs), { code: "", version: 0 });
    });
  }

  test("the reference client does not send a batch above its maxMessageBytes: message_too_large, local changes dropped, still connected", async () => {
    const cs = tmp("client-big");
    const client = await CodespaceClient.connect(url, cs, { maxMessageBytes: MAX_MESSAGE_BYTES, transports: ["websocket"] });
    try {
      client.applyLocal([{ from: 0, to: 0, insert: "ok" }]);
      await client.whenSynced();
      const error = new Promise<CodespaceClientError>((resolve) => client.once("error", resolve));
      const reset = new Promise((resolve) => client.once("reset", resolve));
      client.applyLocal([{ from: 2, to: 2, insert: "é".repeat(MAX_MESSAGE_BYTES) }]);
      assert.equal((await error).code, "message_too_large");
      await reset;
      assert.equal(client.text, "ok");
      assert.equal(client.status, "connected");
      client.applyLocal([{ from: 2, to: 2, insert: "!" }]);
      await client.whenSynced();
      assert.deepEqual(await snapshot(cs), { code: "ok!", version: 2 });
    } finally {
      client.close();
    }
  });

  for (const transports of [["websocket"], ["polling", "websocket"]] as ("polling" | "websocket")[][]) {
    test(`over ${transports.join("+")}: a client whose maxMessageBytes is above the server's stops with message_too_large instead of reconnecting and resending forever`, async () => {
      const cs = tmp("client-loop");
      const client = await CodespaceClient.connect(url, cs, {
        maxMessageBytes: MAX_MESSAGE_BYTES * 100,
        transports,
        socketOptions: { reconnectionDelay: 10, reconnectionDelayMax: 50 },
      });
      let connects = 0;
      client.socket.on("connect", () => connects++);
      const errors: CodespaceClientError[] = [];
      client.on("error", (e) => errors.push(e));
      const closed = new Promise<void>((resolve) => client.on("status", ({ status }) => status === "closed" && resolve()));
      client.applyLocal([{ from: 0, to: 0, insert: "w".repeat(MAX_MESSAGE_BYTES * 2) }]);
      await closed;
      assert.equal(errors.at(-1)?.code, "message_too_large");
      assert.ok(connects <= 3, `reconnected ${connects} times`);
      await assert.rejects(client.whenSynced(), (e: CodespaceClientError) => e.code === "closed");
      assert.deepEqual(await snapshot(cs), { code: "", version: 0 });
    });
  }
});
