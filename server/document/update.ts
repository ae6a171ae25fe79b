/**
 * An update in the server core's form (docs/protocol.md, "Glossary"): one client's edit, its
 * `changes` as a CodeMirror ChangeSet against the document before it (`changes.length` is that
 * document's length, UTF-16 code units). On the wire the same update is a `WireUpdate`.
 */
import type { ChangeSet } from "@codemirror/state";
import type { WireChange } from "../protocol/events.js";

/** One update: whose (`clientID`) and what (`changes`, against the document before it). */
export interface Update {
  clientID: string;
  changes: ChangeSet;
}

/**
 * An accepted update (part of history or of a draft): an Update whose `changes` have the canonical
 * structure every process and client rebuilds from `wire`, the canonical wire form (what is stored
 * and broadcast).
 */
export interface AcceptedUpdate extends Update {
  wire: WireChange[];
}
