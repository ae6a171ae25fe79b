/**
 * Rebasing and deduplication of a client's batch over the updates accepted since its version:
 * exactly `rebaseUpdates` from @codemirror/collab, preceded by a check that every update it would
 * skip as a resend (same clientID) really is the update that was accepted.
 */
import type { ChangeDesc, ChangeSet } from "@codemirror/state";
import { rebaseUpdates } from "@codemirror/collab";
import { InvalidVersionError } from "../errors.js";
import { toWireChanges } from "./changes.js";

/** An update as the rebase sees it: whose, and what (against the document before it). */
export interface RebaseUpdate {
  clientID: string;
  changes: ChangeSet;
}

function sameEffect(a: ChangeSet, b: ChangeSet): boolean {
  if (a.length !== b.length || a.newLength !== b.newLength) return false;
  return JSON.stringify(toWireChanges(a)) === JSON.stringify(toWireChanges(b));
}

/**
 * Walks `over` exactly as rebaseUpdates does; where it would skip `updates[skip]` as already
 * accepted, requires that update, mapped over the other clients' changes accepted before it (since
 * the batch's base), to equal the accepted one. Protects against a client that breaks the protocol
 * (e.g. sends a later update alone at an old version while an earlier one is unconfirmed), whose
 * update rebaseUpdates would otherwise drop silently.
 *
 * One exception: an accepted update of the same client that rebasing made EMPTY may be missing from
 * the batch (a client drops updates that became no-ops locally; resending them is pointless and
 * empty updates are refused). Such an entry is left out of the returned list, so rebaseUpdates does
 * not pair it with the client's next update; leaving out an empty change changes no mapping.
 * @returns `over` without those unpaired empty entries
 * @throws InvalidVersionError (`invalid_version`)
 */
export function matchResends(updates: readonly RebaseUpdate[], over: readonly RebaseUpdate[]): RebaseUpdate[] {
  let changes: ChangeDesc | null = null;
  let skip = 0;
  const kept: RebaseUpdate[] = [];
  for (const accepted of over) {
    const other = skip < updates.length ? updates[skip] : undefined;
    if (other && other.clientID === accepted.clientID) {
      const expected = changes ? other.changes.map(changes) : other.changes;
      if (!sameEffect(expected, accepted.changes)) {
        if (accepted.changes.empty) continue; // a no-op the client dropped: not a resend of it
        throw new InvalidVersionError(
          "an update of this batch carries the clientID of an accepted update but differs from it: " +
            "send all unconfirmed updates, in order, at your synced version (pull first)",
        );
      }
      if (changes) changes = changes.mapDesc(other.changes, true);
      skip++;
    } else {
      changes = changes ? changes.composeDesc(accepted.changes.desc) : accepted.changes.desc;
    }
    kept.push(accepted);
  }
  return kept;
}

/**
 * Maps `updates` over `others` (the composed changes accepted since their base, none of them from
 * this client): what rebaseUpdates computes when it skips nothing, without composing `over` again.
 */
export function mapOver(updates: readonly RebaseUpdate[], others: ChangeDesc): RebaseUpdate[] {
  let changes = others;
  return updates.map((u) => {
    const mapped = u.changes.map(changes);
    changes = changes.mapDesc(u.changes, true);
    return { clientID: u.clientID, changes: mapped };
  });
}

/**
 * Rebases `updates` (based on version v) over `over` (the updates accepted after v, in order),
 * dropping the ones already accepted. Returns updates that apply to the latest document.
 * @throws InvalidVersionError when a skipped resend does not match (see matchResends)
 */
export function rebaseBatch(updates: readonly RebaseUpdate[], over: readonly RebaseUpdate[]): RebaseUpdate[] {
  if (over.length === 0) return updates.slice();
  return rebaseUpdates(updates as RebaseUpdate[], matchResends(updates, over)).map((u) => ({
    clientID: u.clientID,
    changes: u.changes as ChangeSet,
  }));
}
