/**
 * CodeMirror 6 binding: `codespaceCollab(client)` is an extension that binds an `EditorView` to a
 * `CodespaceClient` (browser only: it needs `@codemirror/view`).
 *
 * - Local edits: every transaction that changes the document is handed to `client.applyLocal`; the
 *   client batches, pushes and rebases them (`@codemirror/collab` `sendableUpdates`).
 * - Remote edits: the client applies the server's updates to its collab state with
 *   `@codemirror/collab`'s `receiveUpdates`; the binding dispatches the resulting `ChangeSet` (already
 *   rebased over the local unconfirmed edits) to the view, so the local selection maps through it.
 * - Resets (a new epoch, history too old, refused changes): the view's document is replaced by the
 *   client's (minimal replacement, so the cursor stays where the text is unchanged) and remote
 *   cursors are cleared. On `expired` or any final stop the editor becomes read-only.
 * - Reconnects are transparent: the editor stays editable while the client reconnects, local edits
 *   are queued by the client and sent when it is back; the local selection is resent.
 * - Other participants' selections and cursors are drawn as decorations, one colour per participant
 *   (`participantColor`), labelled with their display name (from a `PresenceTracker`) and remapped
 *   through later edits; a participant's cursor is removed when it leaves.
 *
 * Create the view with the client's text: `new EditorView({ doc: client.text, extensions:
 * [basicSetup, codespaceCollab(client, { presence })] })` (a different starting document is replaced).
 */
import {
  Annotation,
  Compartment,
  EditorState,
  StateEffect,
  StateField,
  type ChangeSet,
  type Extension,
  RangeSet,
  type Range,
} from "@codemirror/state";
import { Decoration, EditorView, GutterMarker, gutterLineClass, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from "@codemirror/view";
import type { CodespaceClient } from "./codespace-client.js";
import type { PresenceTracker } from "./presence.js";
import { LINE_SEPARATOR } from "../protocol/wire.js";

export interface CodespaceCollabOptions {
  /** Display names for cursor labels; cursors of participants who left are removed. */
  presence?: PresenceTracker;
  /** Delay before the local selection is sent (coalesces fast cursor moves), ms. Default 50. */
  selectionDelayMs?: number;
}

/** Marks transactions that come from the server (not pushed back). */
export const remoteChange = Annotation.define<boolean>();

/** Distinct colours for participants (assigned in order of first appearance). */
export const PARTICIPANT_COLORS = [
  "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42b4c8",
  "#f032e6", "#9a6324", "#008080", "#800000", "#808000", "#000075",
] as const;
const assignedColors = new Map<string, string>();

/** The colour of participant `id` (socket id): stable for the page's lifetime. */
export function participantColor(id: string): string {
  let c = assignedColors.get(id);
  if (!c) {
    c = PARTICIPANT_COLORS[assignedColors.size % PARTICIPANT_COLORS.length]!;
    assignedColors.set(id, c);
  }
  return c;
}

interface RemoteSelection {
  id: string;
  label: string;
  color: string;
  ranges: { anchor: number; head: number }[];
}

const setRemote = StateEffect.define<RemoteSelection>();
const removeRemote = StateEffect.define<string>();
const clearRemote = StateEffect.define<null>();

class CursorWidget extends WidgetType {
  constructor(
    readonly id: string,
    readonly color: string,
    readonly label: string,
  ) {
    super();
  }
  override eq(other: CursorWidget): boolean {
    return other.id === this.id && other.color === this.color && other.label === this.label;
  }
  toDOM(): HTMLElement {
    const el = document.createElement("span");
    el.className = "cm-remote-cursor";
    el.style.borderLeftColor = this.color;
    el.setAttribute("data-user", this.id);
    el.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "cm-remote-cursor-label";
    label.style.backgroundColor = this.color;
    label.textContent = this.label;
    el.appendChild(label);
    return el;
  }
  override ignoreEvent(): boolean {
    return true;
  }
}

/** Marks the gutter elements of a line that holds a remote cursor (see `.cm-remote-cursor-gutter`). */
const labelledGutter = new (class extends GutterMarker {
  override elementClass = "cm-remote-cursor-gutter";
})();

/** Others' selections, mapped through every change. */
const remoteSelections = StateField.define<ReadonlyMap<string, RemoteSelection>>({
  create: () => new Map(),
  update(value, tr) {
    let next: Map<string, RemoteSelection> | undefined;
    if (tr.docChanged) {
      next = new Map();
      for (const [id, sel] of value) {
        next.set(id, {
          ...sel,
          ranges: sel.ranges.map((r) => ({ anchor: tr.changes.mapPos(r.anchor, 1), head: tr.changes.mapPos(r.head, 1) })),
        });
      }
    }
    for (const e of tr.effects) {
      if (e.is(setRemote)) {
        next ??= new Map(value);
        const len = tr.state.doc.length;
        const clamp = (n: number) => Math.max(0, Math.min(len, n));
        next.set(e.value.id, { ...e.value, ranges: e.value.ranges.map((r) => ({ anchor: clamp(r.anchor), head: clamp(r.head) })) });
      } else if (e.is(removeRemote)) {
        next ??= new Map(value);
        next.delete(e.value);
      } else if (e.is(clearRemote)) {
        next = new Map();
      }
    }
    return next ?? value;
  },
  provide: (field) => [
    // the gutters (line numbers, folding) of a line with a label get the same room above, so the
    // line number stays level with the text rather than with the label
    gutterLineClass.compute([field], (state) => {
      const lines = new Set<number>();
      for (const sel of state.field(field).values()) for (const r of sel.ranges) lines.add(state.doc.lineAt(r.head).from);
      return RangeSet.of([...lines].sort((x, y) => x - y).map((from) => labelledGutter.range(from)));
    }),
    EditorView.decorations.compute([field], (state): DecorationSet => {
      const decos: Range<Decoration>[] = [];
      const labelled = new Set<number>();
      for (const sel of state.field(field).values()) {
        for (const r of sel.ranges) {
          const from = Math.min(r.anchor, r.head);
          const to = Math.max(r.anchor, r.head);
          if (from < to) {
            decos.push(
              Decoration.mark({
                class: "cm-remote-selection",
                attributes: { style: `background-color: ${sel.color}33`, "data-user": sel.id },
              }).range(from, to),
            );
          }
          decos.push(Decoration.widget({ widget: new CursorWidget(sel.id, sel.color, sel.label), side: 1 }).range(r.head));
          // room above the line for the label: it never covers text, and is never clipped on line 1
          const line = state.doc.lineAt(r.head).from;
          if (!labelled.has(line)) {
            labelled.add(line);
            decos.push(Decoration.line({ class: "cm-remote-cursor-line" }).range(line));
          }
        }
      }
      return Decoration.set(decos, true);
    }),
  ],
});

/** Height of a remote cursor's name label (and of the room made for it above its line), px. */
const LABEL_HEIGHT_PX = 14;

const theme = EditorView.baseTheme({
  ".cm-remote-cursor": {
    position: "relative",
    borderLeft: "2px solid",
    marginLeft: "-1px",
    marginRight: "-1px",
    pointerEvents: "none",
  },
  ".cm-remote-cursor-label": {
    position: "absolute",
    // sits in the line's extra top padding (cm-remote-cursor-line), just above the glyphs
    bottom: "100%",
    left: "-2px",
    fontSize: `${LABEL_HEIGHT_PX - 3}px`,
    lineHeight: `${LABEL_HEIGHT_PX - 1}px`,
    height: `${LABEL_HEIGHT_PX - 1}px`,
    padding: "0 3px",
    color: "white",
    whiteSpace: "nowrap",
    borderRadius: "3px 3px 3px 0",
    fontFamily: "sans-serif",
    opacity: "0.9",
  },
  // a line holding a remote cursor makes room for its label above the text
  ".cm-line.cm-remote-cursor-line": {
    paddingTop: `${LABEL_HEIGHT_PX}px`,
  },
  ".cm-gutterElement.cm-remote-cursor-gutter": {
    paddingTop: `${LABEL_HEIGHT_PX}px`,
    boxSizing: "border-box",
  },
});

/** The smallest replacement turning `from` into `to` (common prefix and suffix kept). */
function minimalReplace(from: string, to: string): { from: number; to: number; insert: string } | null {
  if (from === to) return null;
  let start = 0;
  const max = Math.min(from.length, to.length);
  while (start < max && from.charCodeAt(start) === to.charCodeAt(start)) start++;
  let endA = from.length;
  let endB = to.length;
  while (endA > start && endB > start && from.charCodeAt(endA - 1) === to.charCodeAt(endB - 1)) {
    endA--;
    endB--;
  }
  // never split a surrogate pair
  if (start > 0 && /[\uD800-\uDBFF]/.test(from[start - 1]!)) start--;
  if (endA < from.length && /[\uDC00-\uDFFF]/.test(from[endA]!)) {
    endA++;
    endB++;
  }
  return { from: start, to: endA, insert: to.slice(start, endB) };
}

class Binding {
  readonly #offs: (() => void)[] = [];
  #selectionTimer: ReturnType<typeof setTimeout> | undefined;
  #destroyed = false;

  constructor(
    readonly view: EditorView,
    readonly client: CodespaceClient,
    readonly opts: CodespaceCollabOptions,
    readonly editable: Compartment,
  ) {
    const c = client;
    this.#offs.push(
      c.on("change", ({ remote, changes }) => {
        if (remote) this.#applyRemote(changes);
      }),
      c.on("reset", () => this.#dispatch({ effects: clearRemote.of(null) })),
      c.on("selection", ({ sender, selections }) => {
        if (sender === c.id) return;
        const user = opts.presence?.get(sender);
        this.#dispatch({
          effects: setRemote.of({
            id: sender,
            label: user?.name ?? `guest ${sender.slice(0, 4)}`,
            color: participantColor(sender),
            ranges: selections,
          }),
        });
      }),
      c.on("status", ({ status }) => {
        this.#updateEditable();
        if (status === "connected") {
          this.#resync(); // a reconnect may have reset the document
          this.#scheduleSelection();
        }
        if (status === "closed") this.#dispatch({ effects: clearRemote.of(null) });
      }),
    );
    if (opts.presence) {
      const presence = opts.presence;
      this.#offs.push(
        presence.on("change", ({ users }) => {
          const present = new Set(users.map((u) => u.id));
          const gone = [...view.state.field(remoteSelections).keys()].filter((id) => !present.has(id));
          if (gone.length) this.#dispatch({ effects: gone.map((id) => removeRemote.of(id)) });
        }),
      );
    }
    // The view must start from the client's text; fix it (and the editable state) after creation.
    queueMicrotask(() => {
      this.#updateEditable();
      this.#resync();
    });
  }

  update(u: ViewUpdate): void {
    let local = false;
    for (const tr of u.transactions) {
      if (!tr.docChanged || tr.annotation(remoteChange)) continue;
      local = true;
      try {
        this.client.applyLocal(tr.changes);
      } catch {
        // refused (read-only, closed, a lone surrogate): put the client's text back
        queueMicrotask(() => this.#resync());
        return;
      }
    }
    // Remote edits move our cursor too: resend it so the others' view of it catches up with the
    // document they will have (a selection carries no version, so positions sent while the sender's
    // document lagged would stay off).
    if (u.selectionSet || u.docChanged || local) this.#scheduleSelection();
  }

  destroy(): void {
    this.#destroyed = true;
    if (this.#selectionTimer) clearTimeout(this.#selectionTimer);
    for (const off of this.#offs.splice(0)) off();
  }

  #applyRemote(changes: ChangeSet | undefined): void {
    if (changes && changes.length === this.view.state.doc.length) {
      this.#dispatch({ changes, annotations: remoteChange.of(true) });
      if (this.view.state.doc.length === this.client.state.doc.length) return;
    }
    this.#resync();
  }

  /** Makes the view's document equal to the client's (minimal replacement), if it is not. */
  #resync(): void {
    if (this.#destroyed) return;
    if (this.view.state.doc.eq(this.client.state.doc)) return;
    const change = minimalReplace(this.view.state.doc.toString(), this.client.text);
    if (change) this.#dispatch({ changes: change, annotations: remoteChange.of(true) });
  }

  #updateEditable(): void {
    const writable = this.client.status !== "closed" && this.client.mode === "edit";
    this.#dispatch({ effects: this.editable.reconfigure(editableExtension(writable)) });
  }

  #scheduleSelection(): void {
    if (this.#selectionTimer || this.#destroyed) return;
    this.#selectionTimer = setTimeout(() => {
      this.#selectionTimer = undefined;
      const c = this.client;
      if (this.#destroyed || c.status !== "connected" || c.mode !== "edit") return;
      const ranges = this.view.state.selection.ranges.slice(0, 100).map((r) => ({ anchor: r.anchor, head: r.head }));
      c.setSelection(ranges).catch(() => {
        /* best effort: the next move or reconnect sends it again */
      });
    }, this.opts.selectionDelayMs ?? 50);
  }

  #dispatch(spec: Parameters<EditorView["dispatch"]>[0]): void {
    if (this.#destroyed) return;
    try {
      this.view.dispatch(spec);
    } catch (err) {
      // Dispatching during another view update is not allowed: retry right after it.
      if (err instanceof Error && /update is in progress/.test(err.message)) queueMicrotask(() => this.#dispatch(spec));
      else throw err;
    }
  }
}

function editableExtension(writable: boolean): Extension {
  return [EditorState.readOnly.of(!writable), EditorView.editable.of(writable)];
}

/** The extension binding an EditorView to `client` (see the module comment). */
export function codespaceCollab(client: CodespaceClient, opts: CodespaceCollabOptions = {}): Extension {
  const editable = new Compartment();
  const plugin = ViewPlugin.define((view) => new Binding(view, client, opts, editable));
  return [
    EditorState.lineSeparator.of(LINE_SEPARATOR),
    editable.of(editableExtension(client.status !== "closed" && client.mode === "edit")),
    remoteSelections,
    theme,
    plugin,
  ];
}
