/**
 * A draft: the batches of one drain applied, tentatively, on top of the cache. Each batch is
 * validated, rebased and deduplicated against the cache plus the batches before it in the draft;
 * a batch that fails leaves the draft as it was. The draft is committed to the store in one
 * compare-and-set, or thrown away.
 */
import { ChangeSet, type Text } from "@codemirror/state";
import { DocTooLargeError, InvalidVersionError, VersionTooOldError } from "../errors.js";
import type { InsertValuePayload, WireChange } from "../../protocol/events.js";
import { changesToWire, composeAll } from "../../protocol/wire.js";
import { applyChanges, applyComposed, assertNoSurrogateSplit, insertsSurrogates, toChangeSet } from "./changes.js";
import type { DocCache } from "./doc-cache.js";
import { rebaseBatch } from "./rebase.js";
import type { AcceptedUpdate, Update } from "./update.js";

export class Draft {
  doc: Text;
  /** The drafted updates, to become versions `cache.version + 1 ..`. */
  readonly updates: AcceptedUpdate[] = [];
  /** Socket id of each drafted update's submitter (parallel to `updates`). */
  readonly senders: string[] = [];

  /** False only when `doc` surely holds no surrogate code unit (DocCache.mayHaveSurrogates). */
  private mayHaveSurrogates: boolean;
  /** Consecutive ChangeSets that compose to the drafted updates (a batch's composition, or its updates). */
  private readonly parts: ChangeSet[] = [];

  constructor(
    private readonly cache: DocCache,
    private readonly maxDocLength: number,
    /** Most rebasing work per batch: its changes × the changes accepted since its base. */
    private readonly maxRebaseWork: number = Infinity,
  ) {
    this.doc = cache.doc;
    this.mayHaveSurrogates = cache.mayHaveSurrogates;
  }

  get version(): number {
    return this.cache.version + this.updates.length;
  }

  private lengthAt(v: number): number {
    const c = this.cache;
    if (v < c.version) return c.lengthAt(v);
    return v === this.version ? this.doc.length : this.updates[v - c.version]!.changes.length;
  }

  private updatesAfter(v: number): AcceptedUpdate[] {
    const c = this.cache;
    if (v >= c.version) return this.updates.slice(v - c.version);
    return c.updatesAfter(v).concat(this.updates);
  }

  /**
   * Rebases a batch over the accepted updates after `base` (rebase.ts), after checking that the work stays
   * within maxRebaseWork (the batch's changes × the changes accepted since `base`).
   */
  private rebase(base: number, updates: Update[], changeCount: number): Update[] {
    if (base === this.version) return updates;
    const over = this.updatesAfter(base);
    let work = 0;
    for (const u of over) work += u.wire.length || 1;
    if (work * changeCount > this.maxRebaseWork) {
      throw new InvalidVersionError(
        `this batch is too far behind to rebase here (${over.length} updates since version ${base}): pull, then resend at the new version`,
      );
    }
    return rebaseBatch(updates, over);
  }

  /**
   * Applies one `insert_value` batch (shape-checked) to the draft.
   * @returns the version after the batch (the current draft version when every update was a resend)
   * @throws InvalidVersionError, VersionTooOldError, InvalidPayloadError, DocTooLargeError
   */
  apply(batch: InsertValuePayload, sender: string): number {
    const c = this.cache;
    if (batch.epoch !== c.epoch) throw new InvalidVersionError("epoch mismatch: the codespace was recreated; reload it");
    if (batch.version > c.version) throw new InvalidVersionError(`version ${batch.version} is ahead of the codespace (${c.version})`);
    if (batch.version < c.oldestVersion) throw new VersionTooOldError();

    let length = this.lengthAt(batch.version);
    const updates: Update[] = batch.updates.map((u) => {
      const changes = toChangeSet(u.changes, length);
      length = changes.newLength;
      return { clientID: u.clientID, changes };
    });
    const rebased = this.rebase(batch.version, updates, batch.updates.reduce((n, u) => n + u.changes.length, 0));

    // Surrogate checks need the document before each update; without any surrogate in the document
    // or the batch's inserts no position can split a pair, and the batch is applied composed, once.
    const checkEach = this.mayHaveSurrogates || insertsSurrogates(batch.updates.map((u) => u.changes));
    let doc = this.doc;
    let docLength = doc.length;
    const added: AcceptedUpdate[] = [];
    for (let i = 0; i < rebased.length; i++) {
      const u = rebased[i]!;
      if (checkEach) assertNoSurrogateSplit(doc, u.changes);
      // Keep the canonical structure, the one every client and every other process rebuilds from the
      // wire: ChangeSets with the same effect can map differently (an insertion at a tie). An update
      // that was not rebased and arrived in canonical form already has it.
      const wire = changesToWire(u.changes);
      const input = rebased === updates ? batch.updates[i]!.changes : undefined;
      const changes = input && sameChanges(wire, input) ? u.changes : toChangeSet(wire, docLength);
      if (checkEach) doc = applyChanges(doc, changes);
      docLength = changes.newLength;
      if (docLength > this.maxDocLength) throw new DocTooLargeError(this.maxDocLength);
      added.push({ clientID: u.clientID, changes, wire });
    }
    if (added.length === 0) return this.version;
    if (checkEach) {
      this.doc = doc;
      if (insertsSurrogates(added.map((a) => a.wire))) this.mayHaveSurrogates = true;
      for (const a of added) this.parts.push(a.changes);
    } else {
      const composed = composeAll(added.map((a) => a.changes));
      this.doc = applyComposed(this.doc, composed, added.map((a) => a.wire.length));
      this.parts.push(composed);
    }
    this.updates.push(...added);
    for (let i = 0; i < added.length; i++) this.senders.push(sender);
    return this.version;
  }

  /** The drafted updates composed (from the cache's document to `doc`): what the commit patches. */
  composed(): ChangeSet {
    if (this.parts.length > 1) this.parts.splice(0, this.parts.length, composeAll(this.parts));
    return this.parts[0] ?? ChangeSet.empty(this.cache.doc.length);
  }
}

/** True when two wire change lists are equal, change by change. */
function sameChanges(a: readonly WireChange[], b: readonly WireChange[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (x.from !== y.from || x.to !== y.to || x.insert !== y.insert) return false;
  }
  return true;
}
