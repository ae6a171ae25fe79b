/**
 * Rebasing and deduplication of a client's batch over the updates accepted since its version: the
 * semantics of `rebaseUpdates` from @codemirror/collab (skip the client's own accepted updates by
 * clientID, map the rest over the others'), with two differences:
 * - every update skipped as a resend is checked to really be the update that was accepted;
 * - the batch is mapped over the accepted updates ONE AT A TIME, as a client receiving them one at a
 *   time maps its unconfirmed updates. CodeMirror's mapping is not composition-consistent at
 *   insertion ties (mapping over A then B can differ from mapping over A.compose(B)), so the server
 *   and its clients must group remote updates the same way, or they diverge: one at a time is the
 *   grouping both can always use (docs/protocol.md, rule 5).
 */
import type { ChangeDesc, ChangeSet } from "@codemirror/state";
import { InvalidVersionError } from "../errors.js";
import { changesToWire } from "../../protocol/wire.js";
import type { Update } from "./update.js";

function sameEffect(a: ChangeSet, b: ChangeSet): boolean {
  if (a.length !== b.length || a.newLength !== b.newLength) return false;
  return JSON.stringify(changesToWire(a)) === JSON.stringify(changesToWire(b));
}

/**
 * Rebases `updates` (based on version v) over `over` (the updates accepted after v, in order), one
 * accepted update at a time. Where an accepted update carries the clientID of the batch's next
 * update, that update must be the same one (a resend: skipped), unless the accepted one is EMPTY (a
 * no-op that rebasing produced and the client dropped: passed over). Otherwise every remaining
 * update is mapped over the accepted one exactly as `receiveUpdates` maps unconfirmed updates.
 * @returns the updates still to apply, based on the latest version
 * @throws InvalidVersionError (`invalid_version`) when a resend does not match
 */
export function rebaseBatch(updates: readonly Update[], over: readonly Update[]): Update[] {
  let pending = updates.slice();
  for (const accepted of over) {
    const next = pending[0];
    if (next && next.clientID === accepted.clientID) {
      if (sameEffect(next.changes, accepted.changes)) {
        pending = pending.slice(1);
        continue;
      }
      if (accepted.changes.empty) continue; // a no-op the client dropped: not a resend of it
      throw new InvalidVersionError(
        "an update of this batch carries the clientID of an accepted update but differs from it: " +
          "send all unconfirmed updates, in order, at your synced version (pull first)",
      );
    }
    let changes: ChangeDesc = accepted.changes.desc;
    pending = pending.map((u) => {
      const mapped = u.changes.map(changes);
      changes = changes.mapDesc(u.changes, true);
      return { clientID: u.clientID, changes: mapped };
    });
  }
  return pending;
}
