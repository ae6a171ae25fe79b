/** Loads the real editing traces kept in the repository as fixtures (test/fixtures/traces, CC BY 4.0, see its README). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { REPO_ROOT } from "./server-process.js";

export const TRACES_DIR = join(REPO_ROOT, "test", "fixtures", "traces");

/** A sequential trace: apply each transaction's patches `[pos, delCount, insText]` in order. */
export interface SequentialTrace {
  startContent: string;
  endContent: string;
  txns: { patches: [number, number, string][] }[];
}

/** A concurrent trace: each transaction's positions are relative to the document after its parents. */
export interface ConcurrentTrace {
  kind: "concurrent";
  endContent: string;
  numAgents: number;
  txns: { parents: number[]; agent: number; patches: [number, number, string][] }[];
}

/** Reads and parses a gzipped trace by file name. */
export function loadTrace<T = SequentialTrace>(file: string): T {
  return JSON.parse(gunzipSync(readFileSync(join(TRACES_DIR, file))).toString("utf8")) as T;
}

/** Patches typed between two turns of the event loop by `typeTrace` (a burst of typing). */
export const TRACE_BURST = 64;

/**
 * Types every patch of a sequential trace into `writer` (`applyLocal`, one change per keystroke),
 * yielding to the event loop every `burst` patches so its updates go out while it types.
 */
export async function typeTrace(
  writer: { applyLocal(changes: { from: number; to: number; insert: string }[]): void },
  trace: SequentialTrace,
  burst = TRACE_BURST,
): Promise<void> {
  let n = 0;
  for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      writer.applyLocal([{ from: pos, to: pos + del, insert: ins }]);
      if (++n % burst === 0) await new Promise((r) => setImmediate(r));
    }
  }
}
