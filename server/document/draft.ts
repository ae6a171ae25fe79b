/**
 * A draft: the batches of one drain applied, tentatively, on top of the cache. Each batch is
 * validated, rebased and deduplicated against the cache plus the batches before it in the draft;
 * a batch that fails leaves the draft as it was. The draft is committed to the store in one
 * compare-and-set, or thrown away.
 */
import type { Text } from "@codemirror/state";
import { DocTooLargeError, InvalidVersionError, VersionTooOldError } from "../errors.js";
import type { InsertValuePayload } from "../../protocol/events.js";
import { changesToWire } from "../../protocol/wire.js";
import { applyChanges, assertNoSurrogateSplit, toChangeSet } from "./changes.js";
import type { DocCache, Entry } from "./doc-cache.js";
import { rebaseBatch, type RebaseUpdate } from "./rebase.js";

/** A drafted entry, with the socket id of its submitter. */
export interface DraftEntry extends Entry {
  sender: string;
}

export class Draft {
  doc: Text;
  readonly entries: DraftEntry[] = [];

  constructor(
    private readonly cache: DocCache,
    private readonly maxDocLength: number,
    /** Most rebasing work per batch: its changes × the changes accepted since its base. */
    private readonly maxRebaseWork: number = Infinity,
  ) {
    this.doc = cache.doc;
  }

  get version(): number {
    return this.cache.version + this.entries.length;
  }

  private lengthAt(v: number): number {
    const c = this.cache;
    if (v < c.version) return c.lengthAt(v);
    return v === this.version ? this.doc.length : this.entries[v - c.version]!.changes.length;
  }

  private entriesAfter(v: number): Entry[] {
    const c = this.cache;
    if (v >= c.version) return this.entries.slice(v - c.version);
    return c.entriesAfter(v).concat(this.entries);
  }

  /**
   * Rebases a batch over the entries after `base` (rebase.ts), after checking that the work stays
   * within maxRebaseWork (the batch's changes × the changes accepted since `base`).
   */
  private rebase(base: number, updates: RebaseUpdate[], changeCount: number): RebaseUpdate[] {
    if (base === this.version) return updates;
    const over = this.entriesAfter(base);
    let work = 0;
    for (const e of over) work += e.wire.length || 1;
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
    const updates: RebaseUpdate[] = batch.updates.map((u) => {
      const changes = toChangeSet(u.changes, length);
      length = changes.newLength;
      return { clientID: u.clientID, changes };
    });
    const rebased = this.rebase(batch.version, updates, batch.updates.reduce((n, u) => n + u.changes.length, 0));

    let doc = this.doc;
    const added: DraftEntry[] = [];
    for (const u of rebased) {
      assertNoSurrogateSplit(doc, u.changes);
      // Keep the canonical structure, the one every client and every other process rebuilds from the
      // wire: ChangeSets with the same effect can map differently (an insertion at a tie).
      const wire = changesToWire(u.changes);
      const changes = toChangeSet(wire, doc.length);
      doc = applyChanges(doc, changes);
      if (doc.length > this.maxDocLength) throw new DocTooLargeError(this.maxDocLength);
      added.push({ clientID: u.clientID, changes, wire, sender });
    }
    this.doc = doc;
    this.entries.push(...added);
    return this.version;
  }
}
