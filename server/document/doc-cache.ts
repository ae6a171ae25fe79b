/**
 * A process's cached copy of one codespace: text, version, epoch and the recent accepted updates
 * (as ChangeSets for rebasing). The store stays the truth: the cache is caught up from it whenever a
 * compare-and-set commit finds that another process moved on.
 */
import { ChangeSet, Text } from "@codemirror/state";
import type { WireChange, WireUpdate } from "../../protocol/events.js";
import type { Snapshot } from "../store/code-store.js";
import { composeAll, LINE_SEPARATOR } from "../../protocol/wire.js";
import { applyComposed, hasSurrogate, insertsSurrogates } from "./changes.js";
import type { AcceptedUpdate } from "./update.js";

/** Builds a Text from a string without folding "\r" (lines split on "\n" only). */
export function textOf(code: string): Text {
  return Text.of(code.split(LINE_SEPARATOR));
}

/** Length change of a wire update, UTF-16 code units. */
function delta(changes: readonly WireChange[]): number {
  let d = 0;
  for (const c of changes) d += c.insert.length - (c.to - c.from);
  return d;
}

export class DocCache {
  epoch: string;
  version: number;
  doc: Text;
  /** The accepted updates that produced versions `version - history.length + 1 .. version`, oldest first. */
  history: AcceptedUpdate[] = [];
  /**
   * False only when `doc` surely holds no surrogate code unit (so no position can split a pair):
   * checked on the snapshot, set for good once an update inserts one. Lets the draft skip the
   * per-update surrogate checks (draft.ts).
   */
  mayHaveSurrogates: boolean;

  constructor(snapshot: Snapshot, private readonly historyLength: number) {
    this.epoch = snapshot.epoch;
    this.version = snapshot.version;
    this.doc = textOf(snapshot.code);
    this.mayHaveSurrogates = hasSurrogate(snapshot.code);
  }

  /** Oldest version whose successors are all in `history`. */
  get oldestVersion(): number {
    return this.version - this.history.length;
  }

  /** Document length (UTF-16 code units) at `v`, for oldestVersion <= v <= version. */
  lengthAt(v: number): number {
    return v === this.version ? this.doc.length : this.history[v - this.oldestVersion]!.changes.length;
  }

  /** The accepted updates after version `v` (oldestVersion <= v <= version). */
  updatesAfter(v: number): AcceptedUpdate[] {
    return this.history.slice(v - this.oldestVersion);
  }

  /** Appends accepted updates whose result is `doc` (the text after the last of them). */
  append(updates: readonly AcceptedUpdate[], doc: Text): void {
    if (!this.mayHaveSurrogates && insertsSurrogates(updates.map((u) => u.wire))) this.mayHaveSurrogates = true;
    this.history.push(...updates);
    this.version += updates.length;
    this.doc = doc;
    const excess = this.history.length - this.historyLength;
    if (excess > 0) this.history.splice(0, excess);
  }

  /**
   * Applies committed updates for versions `base + 1 .. base + updates.length`, skipping those the
   * cache already holds (the commit feed and a conflict reply can bring the same ones).
   * @returns false when they start after `version` (a gap: nothing applied)
   * @throws RangeError when an update does not fit the document (the caller then reloads)
   */
  catchUp(base: number, updates: readonly WireUpdate[]): boolean {
    if (base > this.version) return false;
    let length = this.doc.length;
    const accepted: AcceptedUpdate[] = [];
    for (const u of updates.slice(this.version - base)) {
      const changes = ChangeSet.of(u.changes, length, LINE_SEPARATOR);
      length = changes.newLength;
      // committed updates are already in canonical wire form (the committer's Draft made it)
      accepted.push({ clientID: u.clientID, changes, wire: u.changes as WireChange[] });
    }
    // one apply of the composed run instead of one per update (composeAll: O(n log n))
    if (accepted.length > 0) this.append(accepted, applyComposed(this.doc, composeAll(accepted.map((a) => a.changes)), accepted.map((a) => a.wire.length)));
    return true;
  }

  /**
   * Extends history backwards with stored updates for versions `from + 1 .. from + updates.length`
   * (the range must reach at least `oldestVersion`), so a batch based on an older version can be
   * rebased. Lengths are derived backwards from the known ones.
   */
  extendBack(from: number, updates: readonly WireUpdate[]): void {
    const missing = this.oldestVersion - from;
    if (missing <= 0 || missing > updates.length) return;
    let lengthAfter = this.lengthAt(this.oldestVersion);
    const older: AcceptedUpdate[] = new Array(missing);
    for (let i = missing - 1; i >= 0; i--) {
      const u = updates[i]!;
      const lengthBefore = lengthAfter - delta(u.changes);
      const changes = ChangeSet.of(u.changes, lengthBefore, LINE_SEPARATOR);
      older[i] = { clientID: u.clientID, changes, wire: u.changes as WireChange[] };
      lengthAfter = lengthBefore;
    }
    this.history.unshift(...older);
  }
}
