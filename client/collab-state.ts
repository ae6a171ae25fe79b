/**
 * Headless CodeMirror state for the client: an `EditorState` with the collab extension and "\n" as
 * the only line separator (so "\r" is an ordinary character and the text matches the server's).
 */
import { ChangeSet, EditorState, type Text } from "@codemirror/state";
import { collab, getClientID, getSyncedVersion, receiveUpdates, sendableUpdates } from "@codemirror/collab";
import { DEFAULT_LIMITS } from "../protocol/constants.js";
import { canonicalChanges, changeCount, changesToWire, composeAll, isCanonical, LINE_SEPARATOR } from "../protocol/wire.js";

/** A fresh state holding `doc` at synced `version`, with no unconfirmed updates. */
export function createCollabState(doc: string | Text, version: number, clientID?: string): EditorState {
  return EditorState.create({
    doc,
    extensions: [
      EditorState.lineSeparator.of(LINE_SEPARATOR),
      collab(clientID === undefined ? { startVersion: version } : { startVersion: version, clientID }),
    ],
  });
}

/**
 * `changes` as consecutive ChangeSets of at most `max` changes each (the server refuses an update
 * with more than MAX_CHANGES_PER_UPDATE): the first holds the first `max` changes, each next one the
 * next `max`, at their positions in the document the previous ones produce. Composed in order they
 * make `changes`; each is canonical (built from its wire form). `[changes]` when it has at most `max`.
 */
export function splitChanges(changes: ChangeSet, max: number = DEFAULT_LIMITS.maxChangesPerUpdate): ChangeSet[] {
  const wire = changesToWire(changes);
  if (wire.length <= max) return [changes];
  const out: ChangeSet[] = [];
  let shift = 0;
  let length = changes.length;
  for (let i = 0; i < wire.length; i += max) {
    const chunk = wire.slice(i, i + max);
    const set = ChangeSet.of(
      chunk.map((c) => ({ from: c.from + shift, to: c.to + shift, insert: c.insert })),
      length,
      LINE_SEPARATOR,
    );
    for (const c of chunk) shift += c.insert.length - (c.to - c.from);
    length = set.newLength;
    out.push(set);
  }
  return out;
}

/**
 * Rebuilds `state` so that its unconfirmed updates are exactly what will be sent:
 * - the first `keep` updates (sent before: the server may hold them, so they keep their
 *   granularity for deduplication) stay one by one, minus those that became empty, up to the first
 *   one that mapping over concurrent changes grew past `maxChanges` (a replaced range the others
 *   inserted into becomes two changes): the server would refuse it as is (`invalid_payload`), so it
 *   and all after it are treated as never sent;
 * - all later ones are composed into a single update (dropped if empty), split into consecutive
 *   updates of at most `maxChanges` changes (`splitChanges`) when it has more;
 * - every update takes the structure the server rebuilds from its wire form (`canonicalChanges`),
 *   so that later mappings over concurrent changes give the same result here and on the server.
 *
 * `confirmed` must be the document at the synced version. Returns the new state and how many of the
 * first `keep` updates it still holds; returns `state` itself when it is already in that shape.
 * @throws Error when `confirmed` plus the updates does not give `state.doc` (a client bug).
 */
export function compactUnconfirmed(
  state: EditorState,
  confirmed: Text,
  keep: number,
  maxChanges: number = DEFAULT_LIMITS.maxChangesPerUpdate,
): { state: EditorState; kept: number } {
  const updates = sendableUpdates(state);
  keep = Math.min(keep, updates.length);
  const grown = updates.slice(0, keep).findIndex((u) => changeCount(u.changes) > maxChanges);
  if (grown >= 0) keep = grown;
  const prefix = updates.slice(0, keep);
  const tail = updates.slice(keep);
  const ready = (u: { changes: ChangeSet }) => !u.changes.empty && isCanonical(u.changes);
  const small = (u: { changes: ChangeSet }) => changeCount(u.changes) <= maxChanges;
  if (prefix.every(ready) && (tail.length === 0 || (tail.length === 1 && ready(tail[0]!) && small(tail[0]!)))) {
    return { state, kept: keep };
  }
  let next = createCollabState(confirmed, getSyncedVersion(state), getClientID(state));
  let kept = 0;
  for (const u of prefix) {
    if (u.changes.empty) continue;
    next = next.update({ changes: canonicalChanges(u.changes) }).state;
    kept++;
  }
  // balanced (composeAll): left to right is O(n²) in the updates typed offline or while a batch was in flight
  const composed = tail.length ? composeAll(tail.map((u) => u.changes)) : ChangeSet.empty(next.doc.length);
  if (!composed.empty) for (const part of splitChanges(canonicalChanges(composed), maxChanges)) next = next.update({ changes: part }).state;
  if (!next.doc.eq(state.doc)) throw new Error("compactUnconfirmed: rebuilt document differs (confirmed doc out of sync)");
  next = next.update({ selection: state.selection }).state;
  return { state: next, kept };
}

/**
 * A run of remote updates received while nothing is unconfirmed, as `receiveUpdates` input with the
 * same count (the collab version moves by one per update) and the same composed effect: n - 1 empty
 * updates, then the whole run composed as a balanced tree (`composeAll`). `receiveUpdates` composes
 * its input left to right, which for n updates re-copies the growing composition n times; here that
 * is n - 1 compositions of empty sets and one of the composed run. With nothing unconfirmed there is
 * nothing to map, so grouping cannot change the result, and the updates are not ours to confirm.
 */
function asOneRun(updates: readonly { changes: ChangeSet; clientID: string }[]): { changes: ChangeSet; clientID: string }[] {
  if (updates.length < 2) return updates.slice();
  const composed = composeAll(updates.map((u) => u.changes));
  const empty = { changes: ChangeSet.empty(composed.length), clientID: NOT_OURS };
  const run = new Array<{ changes: ChangeSet; clientID: string }>(updates.length - 1).fill(empty);
  run.push({ changes: composed, clientID: NOT_OURS });
  return run;
}

/** Stand-in clientID for an own update treated as remote (never a real client's id). */
const NOT_OURS = "\u0000not-ours";

/**
 * `receiveUpdates` for a run of consecutive server updates, applied ONE AT A TIME, the grouping the
 * server rebases with: CodeMirror's mapping is not composition-consistent at insertion ties, so
 * mapping the unconfirmed updates over a composed run could differ from what the server computed.
 * One correction: an update carrying this client's id whose changes are EMPTY, arriving when the
 * next unconfirmed local update is not empty, is a no-op this client dropped locally
 * (compactUnconfirmed drops updates that became empty; the server accepted it, empty, before).
 * Pairing it with the next unconfirmed update would mark that one confirmed while the server has not
 * applied it, so it is received as a remote no-op.
 * Once no unconfirmed update is left, the rest of the run is received in ONE `receiveUpdates` call
 * (one transaction), composed as a balanced tree (`asOneRun`): with nothing to map, grouping cannot
 * change the result.
 * @returns the new state and the changes applied to the document (null when none)
 */
export function receiveServerUpdates(
  state: EditorState,
  updates: readonly { changes: ChangeSet; clientID: string }[],
): { state: EditorState; changes: ChangeSet | null } {
  const me = getClientID(state);
  let changes: ChangeSet | null = null;
  for (let i = 0; i < updates.length; i++) {
    if (sendableUpdates(state).length === 0) {
      const tr = receiveUpdates(state, asOneRun(i === 0 ? updates : updates.slice(i)));
      state = tr.state;
      if (tr.docChanged) changes = changes ? changes.compose(tr.changes) : tr.changes;
      break;
    }
    const u = updates[i]!;
    let update = u;
    if (u.clientID === me && u.changes.empty) {
      const next = sendableUpdates(state)[0];
      if (!next || !next.changes.empty) update = { changes: u.changes, clientID: NOT_OURS };
    }
    const tr = receiveUpdates(state, [update]);
    state = tr.state;
    if (tr.docChanged) changes = changes ? changes.compose(tr.changes) : tr.changes;
  }
  return { state, changes };
}
