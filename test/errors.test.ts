/** Error codes are part of the wire contract: unique, one class each, and each class carries its code. */
import { test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { CodespaceError, ErrorClasses, ErrorCodes, toCodespaceError } from "../server/errors.js";

test("every error code is unique and snake_case", () => {
  const codes = Object.values(ErrorCodes);
  assert.equal(new Set(codes).size, codes.length);
  for (const c of codes) assert.match(c, /^[a-z]+(_[a-z]+)*$/);
});

test("exactly one error class per code, and it produces that code", () => {
  assert.deepEqual(Object.keys(ErrorClasses).sort(), Object.values(ErrorCodes).sort());
  const classes = Object.values(ErrorClasses);
  assert.equal(new Set(classes).size, classes.length);
  for (const [code, Cls] of Object.entries(ErrorClasses)) {
    const e = new (Cls as new (arg?: unknown) => CodespaceError)(10);
    assert.ok(e instanceof CodespaceError);
    assert.equal(e.code, code);
    // doc_too_large also carries its limit (MAX_DOC_LENGTH)
    assert.deepEqual(Object.keys(e.toWire()).sort(), code === "doc_too_large" ? ["code", "limit", "message"] : ["code", "message"]);
    assert.ok(e.message.length > 0);
  }
});

test("unknown faults become internal_error", () => {
  assert.equal(toCodespaceError(new TypeError("x")).code, "internal_error");
  assert.equal(toCodespaceError("boom").code, "internal_error");
});
