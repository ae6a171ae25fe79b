/**
 * The wire form of changes, and the checks both sides apply to it (docs/protocol.md, "Changes").
 *
 * A wire change is `{ from, to, insert }` in UTF-16 code units against the document *before* the
 * update, sorted by `from`, non-overlapping. Every Text and ChangeSet is built with line separator
 * "\n", so "\r" stays an ordinary character, "\r\n" round-trips byte for byte, and lengths are plain
 * UTF-16 code unit counts (CodeMirror's default splitting would fold "\r\n"). Server and client use
 * these same functions, so both sides build the same ChangeSet from the same wire changes.
 */
import { ChangeSet, type Text } from "@codemirror/state";
import type { InsertValueBatchBroadcast, InsertValueBroadcast, WireChange } from "./events.js";

/** Line separator of every Text and ChangeSet on the server and in the client. */
export const LINE_SEPARATOR = "\n";

/** Canonical wire form of a ChangeSet: one change per changed range, in start-document coordinates. */
export function changesToWire(changes: ChangeSet): WireChange[] {
  const out: WireChange[] = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    out.push({ from: fromA, to: toA, insert: inserted.sliceString(0, inserted.length, LINE_SEPARATOR) });
  });
  return out;
}

/** `changesToWire(changes).length` (the count MAX_CHANGES_PER_UPDATE limits), without building the inserts. */
export function changeCount(changes: ChangeSet): number {
  let n = 0;
  changes.iterChanges(() => n++);
  return n;
}

/**
 * Wire changes as a ChangeSet over a document of `docLength` UTF-16 code units.
 * @throws RangeError when a change falls outside the document or the changes are not sorted.
 */
export function changesFromWire(changes: readonly WireChange[], docLength: number): ChangeSet {
  return ChangeSet.of(
    changes.map((c) => ({ from: c.from, to: c.to, insert: c.insert })),
    docLength,
    LINE_SEPARATOR,
  );
}

/**
 * Turns a run of consecutive wire updates into ChangeSets, each built against the document after
 * the previous ones, starting from `doc`. Returns the ChangeSets and the resulting document.
 * @throws RangeError when an update does not fit the document it applies to.
 */
export function updatesFromWire<U extends { clientID: string; changes: readonly WireChange[] }>(
  updates: readonly U[],
  doc: Text,
): { updates: { clientID: string; changes: ChangeSet }[]; doc: Text } {
  const { updates: out } = changeSetsFromWire(updates, doc.length);
  for (const u of out) doc = u.changes.apply(doc);
  return { updates: out, doc };
}

/**
 * Like `updatesFromWire`, but without building the text: each update's ChangeSet is checked against
 * the LENGTH of the document before it (`length` for the first), which is all a ChangeSet needs.
 * Returns the ChangeSets and the final length. For runs whose end document comes from elsewhere
 * (a composed apply, a state that held no other changes).
 * @throws RangeError when an update does not fit the length it applies to.
 */
export function changeSetsFromWire<U extends { clientID: string; changes: readonly WireChange[] }>(
  updates: readonly U[],
  length: number,
): { updates: { clientID: string; changes: ChangeSet }[]; length: number } {
  const out: { clientID: string; changes: ChangeSet }[] = [];
  for (const u of updates) {
    const changes = changesFromWire(u.changes, length);
    length = changes.newLength;
    out.push({ clientID: u.clientID, changes });
  }
  return { updates: out, length };
}

/**
 * Composes consecutive change sets pairwise, as a balanced tree: O(n log n) in their changes and
 * inserted text, where composing left to right re-copies the growing result n times (O(n²)).
 * @throws RangeError for an empty list or sets that do not follow each other.
 */
export function composeAll(sets: readonly ChangeSet[]): ChangeSet {
  let level = sets.slice();
  if (level.length === 0) throw new RangeError("composeAll needs at least one change set");
  while (level.length > 1) {
    const next: ChangeSet[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? level[i]!.compose(level[i + 1]!) : level[i]!);
    level = next;
  }
  return level[0]!;
}

function isHigh(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
function isLow(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** True when `pos` falls between the two code units of a surrogate pair in `doc`. */
export function splitsSurrogatePair(doc: Text, pos: number): boolean {
  if (pos <= 0 || pos >= doc.length) return false;
  const around = doc.sliceString(pos - 1, pos + 1, LINE_SEPARATOR);
  return isHigh(around.charCodeAt(0)) && isLow(around.charCodeAt(1));
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `text` holds a surrogate code unit that is not half of a pair (not valid UTF-16). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** `text` with every lone surrogate replaced by U+FFFD, as a UTF-8 encoder writes it (String.prototype.toWellFormed). */
export function wellFormed(text: string): string {
  return text.replace(new RegExp(LONE_SURROGATE.source, "g"), "\uFFFD");
}

/**
 * Why the server would refuse `changes` applied to `doc` with `invalid_payload` (a position
 * splitting a surrogate pair, an insert with a lone surrogate), or `null` when they are acceptable.
 */
export function wireProblem(doc: Text, changes: ChangeSet): string | null {
  let problem: string | null = null;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    if (problem) return;
    if (splitsSurrogatePair(doc, fromA) || splitsSurrogatePair(doc, toA)) {
      problem = `change [${fromA}, ${toA}) splits a surrogate pair`;
    } else if (hasLoneSurrogate(inserted.sliceString(0, inserted.length, LINE_SEPARATOR))) {
      problem = `the insert at ${fromA} contains a lone surrogate`;
    }
  });
  return problem;
}

/**
 * The ChangeSet the server rebuilds from `changes`' wire form. Equivalent ChangeSets can differ in
 * structure (an insert next to a deletion, or one replacement), and mapping them over concurrent
 * changes can place insertions differently; a client must therefore keep exactly this form of every
 * update it sends, or its copy drifts from the server's.
 */
export function canonicalChanges(changes: ChangeSet): ChangeSet {
  return changesFromWire(changesToWire(changes), changes.length);
}

/** True when `changes` already has the structure the server rebuilds from its wire form. */
export function isCanonical(changes: ChangeSet): boolean {
  return JSON.stringify(canonicalChanges(changes).toJSON()) === JSON.stringify(changes.toJSON());
}

/** True when an `insert_value` broadcast is a batch (one commit), false for a single update. */
export function isBatchBroadcast(p: InsertValueBroadcast | InsertValueBatchBroadcast): p is InsertValueBatchBroadcast {
  return Array.isArray((p as Partial<InsertValueBatchBroadcast>).updates);
}

/**
 * The single-update broadcasts a batch stands for, in version order: `updates[i]` gets version
 * `batch.version - updates.length + 1 + i` (docs/protocol.md, "Batched broadcasts").
 */
export function unbatch(batch: InsertValueBatchBroadcast): InsertValueBroadcast[] {
  const first = batch.version - batch.updates.length + 1;
  return batch.updates.map((u, i) => ({ version: first + i, clientID: u.clientID, sender: u.sender, changes: u.changes }));
}
