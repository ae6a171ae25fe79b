/**
 * Headless CodeMirror state for the client: an `EditorState` with the collab extension and "\n" as
 * the only line separator (so "\r" is an ordinary character and the text matches the server's).
 */
import { ChangeSet, EditorState, type Text } from "@codemirror/state";
import { collab, getClientID, getSyncedVersion, sendableUpdates } from "@codemirror/collab";
import { LINE_SEPARATOR } from "./wire.js";

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
 * Rebuilds `state` so that its unconfirmed updates are sendable: the first `keep` updates (which the
 * server may already hold, so they must keep their granularity for deduplication) stay as they are
 * unless they became empty, and all later ones are composed into a single update (dropped if empty).
 *
 * `confirmed` must be the document at the synced version. Returns the new state and how many of the
 * first `keep` updates it still holds; returns `state` unchanged if nothing needs rebuilding.
 */
export function compactUnconfirmed(
  state: EditorState,
  confirmed: Text,
  keep: number,
): { state: EditorState; kept: number } {
  const updates = sendableUpdates(state);
  keep = Math.min(keep, updates.length);
  const tail = updates.slice(keep);
  const prefixHasEmpty = updates.slice(0, keep).some((u) => u.changes.empty);
  if (!prefixHasEmpty && tail.length <= 1 && !(tail.length === 1 && tail[0]!.changes.empty)) {
    return { state, kept: keep };
  }
  let next = createCollabState(confirmed, getSyncedVersion(state), getClientID(state));
  let kept = 0;
  for (const u of updates.slice(0, keep)) {
    if (u.changes.empty) continue;
    next = next.update({ changes: u.changes }).state;
    kept++;
  }
  const composed = tail.reduce((acc, u) => acc.compose(u.changes), ChangeSet.empty(next.doc.length));
  if (!composed.empty) next = next.update({ changes: composed }).state;
  if (!next.doc.eq(state.doc)) throw new Error("compactUnconfirmed: rebuilt document differs (confirmed doc out of sync)");
  next = next.update({ selection: state.selection }).state;
  return { state: next, kept };
}
