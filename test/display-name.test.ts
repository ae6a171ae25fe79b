/**
 * A display name chosen by the client (`auth.name`): trimmed and shown to the others through
 * presence; longer than 40 characters, with control characters or not a string: the handshake is
 * refused with `invalid_payload`.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { connectSocket, expectConnectError, nextEvent } from "./helpers/socket.js";

let srv: InProcessServer;
before(async () => {
  srv = await startInProcessServer();
});
after(() => srv?.close());

test("auth.name is trimmed and shown in connected.users and user_joined", async () => {
  const token = `tmp-${randomUUID()}`;
  const a = await connectSocket(srv.url, token, ["websocket"], { auth: { token, name: "  Ada  " } });
  const joined = nextEvent(a.socket, "user_joined");
  const b = await connectSocket(srv.url, token, ["websocket"], { auth: { token, name: "Grace" } });
  try {
    assert.deepEqual(await joined, { id: b.connected.id, mode: "edit", name: "Grace" });
    assert.deepEqual(b.connected.users.find((u) => u.id === a.connected.id), { id: a.connected.id, mode: "edit", name: "Ada" });
  } finally {
    a.socket.close();
    b.socket.close();
  }
});

for (const [label, name] of [["41 characters", "x".repeat(41)], ["a control character", "Ada\nGrace"], ["a number", 42]] as const) {
  test(`auth.name with ${label} is refused with invalid_payload`, async () => {
    const token = `tmp-${randomUUID()}`;
    const err = await expectConnectError(srv.url, token, ["websocket"], { auth: { token, name } });
    assert.equal(err.data?.code, "invalid_payload");
    assert.match(err.message, /auth\.name/);
  });
}
