/**
 * The server's side of wire changes: building an update's ChangeSet with a range check, the
 * surrogate-pair check as an `invalid_payload` error, and a bounded `apply`. The wire form itself
 * (conversions, line separator "\n", the surrogate test) is the protocol's (protocol/wire.ts).
 */
import { ChangeSet, Text } from "@codemirror/state";
import type { WireChange } from "../../protocol/events.js";
import { LINE_SEPARATOR, splitsSurrogatePair } from "../../protocol/wire.js";
import { InvalidPayloadError } from "../errors.js";

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

/**
 * Checks that no changed range of `changes` starts or ends inside a surrogate pair of `doc` (the
 * document it applies to), so the result stays well-formed UTF-16 and round-trips through UTF-8.
 * @throws InvalidPayloadError
 */
export function assertNoSurrogateSplit(doc: Text, changes: ChangeSet): void {
  changes.iterChangedRanges((fromA, toA) => {
    if (splitsSurrogatePair(doc, fromA) || (toA !== fromA && splitsSurrogatePair(doc, toA))) {
      throw new InvalidPayloadError(`change [${fromA}, ${toA}) splits a surrogate pair`);
    }
  });
}

/** Any UTF-16 surrogate code unit (half of a character outside the BMP, e.g. an emoji). */
const SURROGATE = /[\uD800-\uDFFF]/;

/** True when `text` holds a surrogate code unit. */
export function hasSurrogate(text: string): boolean {
  return SURROGATE.test(text);
}

/** True when some change of some list in `changeLists` inserts a surrogate code unit. */
export function insertsSurrogates(changeLists: Iterable<readonly WireChange[]>): boolean {
  for (const changes of changeLists) for (const c of changes) if (SURROGATE.test(c.insert)) return true;
  return false;
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

/**
 * The document after consecutive updates, applied as their composition `composed` in one go (see
 * composeAll). When no update has more than ONE_PASS_THRESHOLD changes, `composed.apply(doc)`:
 * each composed change comes from at most that many per update, so this copies no more than applying
 * them one by one. Otherwise `applyChanges` (one pass over the text, as that update alone would cost).
 * `changeCounts`: each update's number of changes.
 */
export function applyComposed(doc: Text, composed: ChangeSet, changeCounts: Iterable<number>): Text {
  for (const n of changeCounts) if (n > ONE_PASS_THRESHOLD) return applyChanges(doc, composed);
  return composed.apply(doc);
}
