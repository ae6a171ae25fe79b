/**
 * The UTF-8 patch of a commit: what a store that keeps the text as UTF-8 (Redis) needs to apply the
 * commit's updates itself instead of receiving the whole text, for any text, ASCII or not.
 *
 * Positions on the wire are UTF-16 code units; the stored text is UTF-8. Converting a position to a
 * byte offset needs the UTF-8 length of everything before it. CodeMirror's `Text` is a balanced tree
 * of immutable nodes (leaves of at most 32 lines) that successive versions share, so the UTF-8 length
 * of every node is cached in a WeakMap: after an edit only the nodes on the changed path are new, and
 * a byte offset costs O(log(lines) + one leaf) instead of O(document). (A document that is one huge
 * line has one huge leaf: there the cost is that line's length.)
 */
import { Buffer } from "node:buffer";
import type { ChangeSet, Text } from "@codemirror/state";
import type { Utf8Patch } from "../store/code-store.js";
import { LINE_SEPARATOR } from "../../protocol/wire.js";

const byteLengths = new WeakMap<Text, number>();

/** UTF-8 length of `text` in bytes (lines joined with "\n"), cached per tree node. */
export function utf8Length(text: Text): number {
  let n = byteLengths.get(text);
  if (n !== undefined) return n;
  const children = text.children;
  if (children) {
    n = children.length - 1; // the line breaks between children
    for (const child of children) n += utf8Length(child);
  } else {
    n = Buffer.byteLength(text.sliceString(0, text.length, LINE_SEPARATOR));
  }
  byteLengths.set(text, n);
  return n;
}

/**
 * UTF-8 byte offset of UTF-16 position `pos` (0 <= pos <= text.length, not inside a surrogate pair:
 * the accept path rejects changes that split one).
 */
export function utf8Offset(text: Text, pos: number): number {
  let bytes = 0;
  let node = text;
  for (;;) {
    const children = node.children;
    if (!children) return bytes + Buffer.byteLength(node.sliceString(0, pos, LINE_SEPARATOR));
    let i = 0;
    while (i < children.length - 1 && pos > children[i]!.length) {
      pos -= children[i]!.length + 1;
      bytes += utf8Length(children[i]!) + 1;
      i++;
    }
    node = children[i]!;
  }
}

/** Composes consecutive change sets pairwise (protocol/wire.ts; re-exported for the server's modules). */
export { composeAll } from "../../protocol/wire.js";

/**
 * The patch that turns `base` into `base` with `changes` applied (changes.length === base.length),
 * in UTF-8 bytes: one pass over the composed changes, whatever the size of the document.
 */
export function utf8Patch(base: Text, changes: ChangeSet): Utf8Patch {
  let bytes = utf8Length(base);
  const out: Utf8Patch["changes"] = [];
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    const from = utf8Offset(base, fromA);
    const to = fromA === toA ? from : utf8Offset(base, toA);
    const insert = inserted.sliceString(0, inserted.length, LINE_SEPARATOR);
    const insertBytes = Buffer.byteLength(insert);
    bytes += insertBytes - (to - from);
    out.push({ from, to, insert, insertBytes });
  });
  return { bytes, changes: out };
}
