/**
 * Payload shape checks for client events. Hand-written, precompiled checks rather than joi: these
 * run on every keystroke (the hot path), and each failure names the offending field.
 * Semantic checks that need the document (range, surrogate pairs) live in document/changes.ts.
 *
 * Every function throws InvalidPayloadError (`invalid_payload`) and returns the payload typed;
 * `checkInsertValue` also throws DocTooLargeError (`doc_too_large`) for an insert longer than
 * MAX_DOC_LENGTH (the result would exceed the limit whatever the document).
 */
import { DocTooLargeError, InvalidPayloadError } from "../errors.js";
import type { CreateSelectionPayload, InsertValuePayload, PullPayload, WireChange, WireUpdate } from "./events.js";

/** Limits applied by the shape checks (from Config). */
export interface PayloadLimits {
  /** Longest document / insert, UTF-16 code units. */
  maxDocLength: number;
  maxUpdatesPerBatch: number;
  maxChangesPerUpdate: number;
  /** All updates of a batch together. */
  maxChangesPerBatch: number;
  maxSelections: number;
}

const MAX_ID_LENGTH = 128;

function fail(message: string): never {
  throw new InvalidPayloadError(message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function position(v: unknown, where: string, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    fail(`${where} must be an integer from 0 to ${max}`);
  }
  return v;
}

function id(v: unknown, where: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID_LENGTH) {
    fail(`${where} must be a string of 1 to ${MAX_ID_LENGTH} characters`);
  }
  return v;
}

function version(v: unknown): number {
  return position(v, "version", Number.MAX_SAFE_INTEGER);
}

function changeList(v: unknown, where: string, limits: PayloadLimits): WireChange[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > limits.maxChangesPerUpdate) {
    fail(`${where}.changes must be an array of 1 to ${limits.maxChangesPerUpdate} changes`);
  }
  let prevTo = 0;
  for (let i = 0; i < v.length; i++) {
    const c: unknown = v[i];
    const at = `${where}.changes[${i}]`;
    if (!isObject(c)) fail(`${at} must be an object { from, to, insert }`);
    const from = position(c.from, `${at}.from`, limits.maxDocLength);
    const to = position(c.to, `${at}.to`, limits.maxDocLength);
    const insert = c.insert;
    if (typeof insert !== "string") fail(`${at}.insert must be a string`);
    if (to < from) fail(`${at}: to (${to}) is before from (${from})`);
    if (from < prevTo) fail(`${at} overlaps or is not sorted after the previous change (from ${from} < ${prevTo})`);
    // whatever the document, the result would exceed the limit: the same code as the draft's check
    if (insert.length > limits.maxDocLength) throw new DocTooLargeError(limits.maxDocLength);
    if (from === to && insert.length === 0) fail(`${at} changes nothing`);
    if (!insert.isWellFormed()) fail(`${at}.insert contains a lone surrogate`);
    prevTo = to;
  }
  return v as WireChange[];
}

/** `insert_value` `{ epoch, version, updates: [{ clientID, changes: [{ from, to, insert }] }] }`. */
export function checkInsertValue(p: unknown, limits: PayloadLimits): InsertValuePayload {
  if (!isObject(p)) fail("payload must be an object { epoch, version, updates }");
  const epoch = id(p.epoch, "epoch");
  const v = version(p.version);
  const updates = p.updates;
  if (!Array.isArray(updates) || updates.length === 0 || updates.length > limits.maxUpdatesPerBatch) {
    fail(`updates must be an array of 1 to ${limits.maxUpdatesPerBatch} updates`);
  }
  let clientID: string | undefined;
  let total = 0;
  for (let i = 0; i < updates.length; i++) {
    const u: unknown = updates[i];
    if (!isObject(u)) fail(`updates[${i}] must be an object { clientID, changes }`);
    const cid = id(u.clientID, `updates[${i}].clientID`);
    if (clientID !== undefined && cid !== clientID) fail("all updates of a batch must carry the same clientID");
    clientID = cid;
    total += changeList(u.changes, `updates[${i}]`, limits).length;
    if (total > limits.maxChangesPerBatch) fail(`a batch carries at most ${limits.maxChangesPerBatch} changes in all`);
  }
  return { epoch, version: v, updates: updates as WireUpdate[] };
}

/**
 * `create_selection` `{ selections: [{ anchor, head }] }` with 1 to maxSelections ranges. Positions
 * beyond MAX_DOC_LENGTH are clamped to it rather than refused: a sender's local document may hold
 * an oversized paste the server is about to refuse (`doc_too_large`), and a selection is advisory.
 */
export function checkCreateSelection(p: unknown, limits: PayloadLimits): CreateSelectionPayload {
  if (!isObject(p)) fail("payload must be an object { selections }");
  const s = p.selections;
  if (!Array.isArray(s) || s.length === 0 || s.length > limits.maxSelections) {
    fail(`selections must be an array of 1 to ${limits.maxSelections} ranges`);
  }
  const selections = s.map((r: unknown, i) => {
    if (!isObject(r)) fail(`selections[${i}] must be an object { anchor, head }`);
    return {
      anchor: Math.min(position(r.anchor, `selections[${i}].anchor`, Number.MAX_SAFE_INTEGER), limits.maxDocLength),
      head: Math.min(position(r.head, `selections[${i}].head`, Number.MAX_SAFE_INTEGER), limits.maxDocLength),
    };
  });
  return { selections };
}

/** `pull` `{ epoch, version }`. */
export function checkPull(p: unknown): PullPayload {
  if (!isObject(p)) fail("payload must be an object { epoch, version }");
  return { epoch: id(p.epoch, "epoch"), version: version(p.version) };
}
