/**
 * Carrying local edits that were never sent onto a newer snapshot of the server's document, when
 * the history between the two is gone (`version_too_old`: the client was offline while more than
 * the server's HISTORY_LENGTH updates were accepted).
 *
 * Without that history the server's changes are not known one by one, so they are approximated by
 * a character diff of the text the edits were based on and the snapshot (diff-match-patch, through
 * @sanity/diff-match-patch), and the edits are mapped over it (`ChangeSet.map`), as a three-way
 * merge does. Edits that were sent are never carried: the server may hold them, and with the history
 * gone it could not recognise a resend, which would then be applied twice.
 *
 * Units: positions in UTF-16 code units.
 */
import { ChangeSet, type ChangeSpec, type Text } from "@codemirror/state";
import { cleanupSemantic, DIFF_DELETE, DIFF_INSERT, makeDiff } from "@sanity/diff-match-patch";
import { LINE_SEPARATOR, wireProblem } from "../protocol/wire.js";

/**
 * How long the diff may search for the smallest one before it settles for a coarser (still exact)
 * diff, seconds (diff-match-patch's `timeout`): a large, very different text never blocks the page.
 */
export const CARRY_DIFF_TIMEOUT_SECONDS = 0.5;

/**
 * The changes that turn `from` into `to`, as one ChangeSet over `from` (a character diff, exact
 * whatever the timeout cuts short; positions in UTF-16 code units). The diff is cleaned up into
 * human-sized pieces (diff-match-patch's semantic cleanup): a rewritten passage becomes one
 * replacement instead of many single characters that happen to match, so an edit carried over it
 * lands at its edge rather than inside unrelated text.
 */
export function diffChanges(from: string, to: string): ChangeSet {
  const specs: ChangeSpec[] = [];
  let pos = 0;
  for (const [op, text] of cleanupSemantic(makeDiff(from, to, { timeout: CARRY_DIFF_TIMEOUT_SECONDS, checkLines: true }))) {
    if (op === DIFF_INSERT) specs.push({ from: pos, insert: text });
    else {
      if (op === DIFF_DELETE) specs.push({ from: pos, to: pos + text.length });
      pos += text.length;
    }
  }
  return ChangeSet.of(specs, from.length, LINE_SEPARATOR);
}

/**
 * `unsent` (changes over `base`, the text they were made on) carried onto `snapshot`: mapped over
 * the diff from `base` to `snapshot`. Returns undefined when nothing is left to carry or the result
 * would not be a valid update (`wireProblem`, e.g. a position inside a surrogate pair).
 */
export function carryOnto(base: Text, unsent: ChangeSet, snapshot: Text): ChangeSet | undefined {
  if (unsent.empty) return undefined;
  const carried = unsent.map(diffChanges(base.toString(), snapshot.toString()));
  if (carried.empty || wireProblem(snapshot, carried)) return undefined;
  return carried;
}
