/** Summarises a V8 `.cpuprofile` (node --cpu-prof): self time by package/area and the top functions. */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Non-idle time, ms. */
  busyMs: number;
  /** Self time by area, ms and share of busy time, largest first. */
  byArea: { area: string; ms: number; pct: number }[];
  /** Top functions by self time. */
  topFunctions: { fn: string; where: string; ms: number; pct: number }[];
}

function areaOf(url: string, fn: string, root: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native/builtin)";
  if (url.startsWith("node:")) return "node core (" + url.replace(/^node:(internal\/)?/, "").split("/")[0] + ")";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return m[1]!;
  const local = url.replace(/^file:\/\//, "").replace(root, "");
  return local.split("/").slice(0, 2).join("/");
}

export function summarizeProfile(path: string, root: string): ProfileSummary {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const areas = new Map<string, number>();
  const fns = new Map<string, { where: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    total += us;
    if (functionName === "(idle)") {
      idle += us;
      continue;
    }
    const area = areaOf(url, functionName, root);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = url ? `${url.replace(/^file:\/\//, "").replace(root, "")}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"} ${where}`;
    const f = fns.get(key) ?? { where, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const busy = total - idle;
  const pct = (us: number): number => Math.round((us / busy) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    byArea: [...areas].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([area, us]) => ({ area, ms: Math.round(us / 1000), pct: pct(us) })),
    topFunctions: [...fns]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 25)
      .map(([key, f]) => ({ fn: key.split(" ")[0]!, where: f.where, ms: Math.round(f.us / 1000), pct: pct(f.us) })),
  };
}
