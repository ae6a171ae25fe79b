/**
 * Conversions between CodeMirror `ChangeSet`s and the wire format of docs/protocol.md.
 *
 * Wire changes are `{ from, to, insert }` in UTF-16 code units against the document *before* the
 * update, sorted by `from`, non-overlapping. The line separator is always "\n": "\r" is an ordinary
 * character, so "\r\n" round-trips byte for byte.
 */
import { ChangeSet, type Text } from "@codemirror/state";
import type { WireChange } from "../server/protocol/events.js";
import { LINE_SEPARATOR, splitsSurrogatePair, toWireChanges } from "../server/document/changes.js";

// One implementation for server and client: the same conversions and checks, so both sides agree.
export { LINE_SEPARATOR, splitsSurrogatePair };

/** A ChangeSet as wire changes (one per changed range; unchanged stretches are omitted). */
export const changesToWire: (changes: ChangeSet) => WireChange[] = toWireChanges;

/**
 * Wire changes as a ChangeSet over a document of `docLength` UTF-16 code units.
 * @throws RangeError when a change falls outside the document.
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
  const out: { clientID: string; changes: ChangeSet }[] = [];
  for (const u of updates) {
    const changes = changesFromWire(u.changes, doc.length);
    doc = changes.apply(doc);
    out.push({ clientID: u.clientID, changes });
  }
  return { updates: out, doc };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why the server would refuse `changes` applied to `doc` (a position splitting a surrogate pair, an
 * insert with a lone surrogate), or `null` when they are acceptable.
 */
export function wireProblem(doc: Text, changes: ChangeSet): string | null {
  let problem: string | null = null;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    if (problem) return;
    if (splitsSurrogatePair(doc, fromA) || splitsSurrogatePair(doc, toA)) {
      problem = `a change at ${fromA}..${toA} splits a surrogate pair`;
    } else if (LONE_SURROGATE.test(inserted.toString())) {
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
