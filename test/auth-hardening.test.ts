/** Share tokens that could steer the API request, and API answers the server must not trust. */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { startInProcessServer, type InProcessServer } from "./helpers/in-process-server.js";
import { expectConnectError } from "./helpers/socket.js";
import { startStubApi, type StubApi } from "./helpers/stub-api.js";

let stub: StubApi;
let srv: InProcessServer;
before(async () => {
  stub = await startStubApi();
  srv = await startInProcessServer({ API_BASE_URL: stub.baseUrl, LOG_LEVEL: "error" });
});
after(async () => {
  await srv.close();
  await stub.close();
});

for (const token of [".", ".."]) {
  test(`the dot-segment token "${token}" is refused without calling the API`, async () => {
    const before = stub.calls.length;
    const err = await expectConnectError(srv.url, token);
    assert.equal((err.data as { code: string }).code, "invalid_token");
    assert.equal(stub.calls.length, before);
  });
}

test("an API uuid in the tmp- namespace is refused (auth_unavailable)", async () => {
  stub.setToken("shadow", { status: 200, body: { uuid: "tmp-shadow", mode: "view_only" } });
  const err = await expectConnectError(srv.url, "shadow");
  assert.equal((err.data as { code: string }).code, "auth_unavailable");
});

test("an oversized API answer is not buffered: auth_unavailable", async () => {
  stub.setToken("huge", { status: 200, rawBody: JSON.stringify({ uuid: "u-huge", mode: "edit", pad: "x".repeat(200 * 1024) }) });
  const err = await expectConnectError(srv.url, "huge");
  assert.equal((err.data as { code: string }).code, "auth_unavailable");
});
