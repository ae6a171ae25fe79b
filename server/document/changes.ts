/**
 * Wire changes <-> CodeMirror ChangeSets, and the semantic checks that need the document.
 *
 * Every ChangeSet is built with line separator "\n" so that "\r" stays an ordinary character and
 * lengths are plain UTF-16 code unit counts (CodeMirror's default splitting would fold "\r\n").
 */
import { ChangeSet, Text } from "@codemirror/state";
import { InvalidPayloadError } from "../errors.js";
import type { WireChange } from "../protocol/events.js";

/** Line separator used for every Text and ChangeSet on the server and in the client library. */
export const LINE_SEPARATOR = "\n";

/**
 * Builds the ChangeSet of one update from its wire changes (already shape-checked: sorted,
 * non-overlapping, integers). `length` is the length of the document the update applies to.
 * @throws InvalidPayloadError (`invalid_payload`) when a change reaches past `length`.
 */
export function toChangeSet(changes: readonly WireChange[], length: number): ChangeSet {
  const last = changes[changes.length - 1];
  if (last && last.to > length) {
    throw new InvalidPayloadError(`change [${last.from}, ${last.to}) is out of range: the document has ${length} UTF-16 code units`);
  }
  return ChangeSet.of(changes as WireChange[], length, LINE_SEPARATOR);
}

/** Canonical wire form of a ChangeSet: sorted, merged ranges in start-document coordinates. */
export function toWireChanges(changes: ChangeSet): WireChange[] {
  const out: WireChange[] = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    out.push({ from: fromA, to: toA, insert: inserted.sliceString(0, inserted.length, LINE_SEPARATOR) });
  });
  return out;
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

/**
 * Checks that no changed range of `changes` starts or ends inside a surrogate pair of `doc` (the
 * document it applies to), so the result stays well-formed UTF-16 and round-trips through UTF-8.
 * @throws InvalidPayloadError
 */
export function assertNoSurrogateSplit(doc: Text, changes: ChangeSet): void {
  changes.iterChangedRanges((fromA, toA) => {
    if (splitsSurrogatePair(doc, fromA) || splitsSurrogatePair(doc, toA)) {
      throw new InvalidPayloadError(`change [${fromA}, ${toA}) splits a surrogate pair`);
    }
  });
}

/** Changes per update above which applyChanges rebuilds the text in one pass. */
const ONE_PASS_THRESHOLD = 16;

/**
 * `changes.apply(doc)`, bounded for many-change updates: CodeMirror replaces change by change, each
 * copying the line it touches, so k changes on one long line (minified code) cost k times the line.
 * Above ONE_PASS_THRESHOLD changes the text is rebuilt in one pass instead: O(length + inserts).
 */
export function applyChanges(doc: Text, changes: ChangeSet): Text {
  let count = 0;
  changes.iterChangedRanges(() => void count++);
  if (count <= ONE_PASS_THRESHOLD) return changes.apply(doc);
  const text = doc.sliceString(0, doc.length, LINE_SEPARATOR);
  const parts: string[] = [];
  let pos = 0;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    parts.push(text.slice(pos, fromA), inserted.sliceString(0, inserted.length, LINE_SEPARATOR));
    pos = toA;
  });
  parts.push(text.slice(pos));
  return Text.of(parts.join("").split(LINE_SEPARATOR));
}
