/** Wire-format helpers for tests. */
import type { WireChange } from "../../protocol/events.js";

/** Applies wire changes (positions against the doc before the update) to a plain string. */
export function applyWire(s: string, changes: readonly WireChange[]): string {
  let out = "";
  let pos = 0;
  for (const c of changes) {
    out += s.slice(pos, c.from) + c.insert;
    pos = c.to;
  }
  return out + s.slice(pos);
}
