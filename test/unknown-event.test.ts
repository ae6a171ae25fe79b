/** An event the protocol does not define is answered (invalid_payload), never left hanging. */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, emitAck, nextEvent, type AnySocket } from "./helpers/socket.js";

let srv: InProcessServer;
before(async () => {
  srv = await startInProcessServer();
});
after(async () => {
  await srv.close();
});

test("an unknown event with a callback gets invalid_payload; without one, operation_error", async () => {
  const { socket } = await connectSocket(srv.url, "tmp-unknown", ["websocket"]);
  try {
    const raw = socket as unknown as AnySocket;
    const res = (await emitAck(raw, "nonexistent", {})) as { ok: boolean; error: { code: string; message: string } };
    assert.equal(res.ok, false);
    assert.equal(res.error.code, "invalid_payload");
    assert.match(res.error.message, /unknown event "nonexistent"/);
    const err = nextEvent(socket, "operation_error");
    raw.emit("nonexistent", {});
    assert.deepEqual(await err, { event: "nonexistent", error: res.error });
    // the known events still reach their handlers
    const pull = (await emitAck(socket, "pull", { epoch: "x", version: 0 })) as { ok: boolean };
    assert.equal(pull.ok, false);
  } finally {
    socket.close();
  }
});
