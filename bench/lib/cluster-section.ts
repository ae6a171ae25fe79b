/**
 * The Redis Cluster section of docs/benchmarks.md: bench/cluster.ts writes it between these markers,
 * bench/run.ts keeps it when it rewrites the rest of the report.
 */
const BEGIN = "<!-- cluster:begin";
const END = "<!-- cluster:end -->\n";

/** Where the section lies in `text` (begin inclusive, end exclusive), or undefined. */
function find(text: string): { begin: number; end: number } | undefined {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  return begin >= 0 && end > begin ? { begin, end: end + END.length } : undefined;
}

/** The section in `text` (markers included), or "" when it has none. */
export function clusterSectionOf(text: string): string {
  const at = find(text);
  return at ? text.slice(at.begin, at.end) : "";
}

/** `text` with its section replaced by `section`, or `section` appended when it has none. */
export function withClusterSection(text: string, section: string): string {
  const at = find(text);
  if (at) return text.slice(0, at.begin) + section + text.slice(at.end);
  return `${text}${text.endsWith("\n\n") || text === "" ? "" : "\n"}${section}`;
}
