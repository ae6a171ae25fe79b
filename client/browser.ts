/**
 * Entry of the browser ESM bundle (`dist/web/assets/codespace.js`, built by scripts/build-web.mjs):
 * the client library, presence, the CodeMirror 6 binding, and the CodeMirror pieces a page needs to
 * build an editor (one copy of @codemirror/state and /view for the binding and the editor).
 */
export * from "./index.js";
export {
  codespaceCollab,
  participantColor,
  remoteChange,
  PARTICIPANT_COLORS,
  type CodespaceCollabOptions,
} from "./codemirror.js";
export { EditorView, keymap } from "@codemirror/view";
export { EditorState } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { javascript } from "@codemirror/lang-javascript";
