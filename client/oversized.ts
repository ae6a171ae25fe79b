/**
 * What the client does with `doc_too_large`: drop the insertions that make the document too long
 * (largest growth first, typically one paste) and keep every other unconfirmed edit.
 */
import { ChangeSet, type EditorState, type Text } from "@codemirror/state";
import { getClientID, getSyncedVersion, sendableUpdates } from "@codemirror/collab";
import { createCollabState } from "./collab-state.js";

export interface DropOversizedResult {
  /** The state whose single unconfirmed update is the kept changes (on top of `confirmed`). */
  state: EditorState;
  /** Maps the previous local document to the new one (for the editor). */
  changes: ChangeSet;
  /** Number of changes dropped (at least 1). */
  dropped: number;
}

/**
 * Splits the unconfirmed edits of `state` (on top of `confirmed`, the document at the synced
 * version) into single changes and drops those that grow the document most until its length is at
 * most `limit` UTF-16 code units. Returns null when dropping growing changes cannot help (nothing
 * grows the document: the caller falls back to dropping everything).
 */
export function dropOversized(state: EditorState, confirmed: Text, limit: number): DropOversizedResult | null {
  const composed = sendableUpdates(state).reduce((acc, u) => acc.compose(u.changes), ChangeSet.empty(confirmed.length));
  const parts: { from: number; to: number; insert: string; grow: number }[] = [];
  composed.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    parts.push({ from: fromA, to: toA, insert: inserted.toString(), grow: inserted.length - (toA - fromA) });
  });
  let length = state.doc.length;
  const drop = new Set<number>();
  const byGrowth = parts.map((_, i) => i).sort((a, b) => parts[b]!.grow - parts[a]!.grow);
  for (const i of byGrowth) {
    if (length <= limit || parts[i]!.grow <= 0) break;
    drop.add(i);
    length -= parts[i]!.grow;
  }
  if (drop.size === 0 || length > limit) return null;
  const kept = ChangeSet.of(parts.filter((_, i) => !drop.has(i)).map(({ from, to, insert }) => ({ from, to, insert })), confirmed.length);
  let next = createCollabState(confirmed, getSyncedVersion(state), getClientID(state));
  if (!kept.empty) next = next.update({ changes: kept }).state;
  const changes = composed.invert(confirmed).compose(kept);
  return { state: next, changes, dropped: drop.size };
}
