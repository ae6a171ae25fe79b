/**
 * The configuration tables of README.md (short) and docs/operations.md (with the operators' details),
 * rendered from server/config/variables.ts and written between marker comments by
 * `npm run docs:config` (scripts/docs-config.mjs). test/config.test.ts renders them again and fails
 * when the files differ.
 */
import { VARIABLES } from "./variables.js";
import type { Variable } from "./variable.js";

export type TableFlavour = "readme" | "operations";

/** Marker comments around the generated table; the text between them is replaced. */
export const TABLE_BEGIN = "<!-- config-table:begin (generated from server/config/variables.ts by `npm run docs:config`; do not edit) -->";
export const TABLE_END = "<!-- config-table:end -->";

/** Files holding a generated table, relative to the repository root. */
export const TABLE_FILES: readonly { path: string; flavour: TableFlavour }[] = [
  { path: "README.md", flavour: "readme" },
  { path: "docs/operations.md", flavour: "operations" },
];

/** The Markdown table, one row per variable, in declaration order. */
export function renderConfigTable(flavour: TableFlavour): string {
  const rows = Object.values(VARIABLES as Record<string, Variable<unknown>>).map((v) => {
    const meaning = flavour === "operations" && v.details ? `${v.doc}; ${v.details}` : v.doc;
    return `| \`${v.env}\` | ${v.defaultText} | ${v.unit} | ${meaning.replaceAll("|", "\\|")} |`;
  });
  return ["| Variable | Default | Unit | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/**
 * `text` with the table between the markers replaced.
 * @throws Error when the markers are missing or out of order.
 */
export function withConfigTable(text: string, flavour: TableFlavour): string {
  const begin = text.indexOf(TABLE_BEGIN);
  const end = text.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`config table markers missing (${TABLE_BEGIN} ... ${TABLE_END})`);
  return `${text.slice(0, begin + TABLE_BEGIN.length)}\n${renderConfigTable(flavour)}\n${text.slice(end)}`;
}
