/**
 * Metrics of durable saves and loads, registered on the server's registry (docs/operations.md):
 * `codespace_saves_total{result}`, `codespace_unsaved_codespaces`, `codespace_save_lag_seconds`,
 * `codespace_loads_total{result}`.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * `saved` (2xx), `conflict` (409: the site holds newer), `failed` (anything else, a timeout, a
 * network error: retried), `lost` (the codespace expired while its save was still failing).
 */
export type SaveResult = "saved" | "conflict" | "failed" | "lost";
/** `loaded` (200), `new` (404: empty), `failed` (refused with codespace_unavailable). */
export type LoadResult = "loaded" | "new" | "failed";

export interface SaveMetrics {
  saves: Counter<"result">;
  lag: Histogram;
  loads: Counter<"result">;
}

const LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86_400];

export function createSaveMetrics(registry: Registry, unsaved: () => Promise<number>): SaveMetrics {
  const registers = [registry];
  new Gauge({
    name: "codespace_unsaved_codespaces",
    help: "Codespaces with commits the site has not taken yet (the whole store's count: take the max across processes)",
    registers,
    aggregator: "max",
    async collect() {
      this.set(await unsaved().catch(() => 0));
    },
  });
  return {
    saves: new Counter({ name: "codespace_saves_total", help: "Save attempts, by result (saved, conflict, failed; lost: the codespace expired while its save was still failing)", labelNames: ["result"] as const, registers }),
    lag: new Histogram({
      name: "codespace_save_lag_seconds",
      help: "Time from the first unsaved commit to the save that covered it, seconds",
      buckets: LAG_BUCKETS,
      registers,
    }),
    loads: new Counter({ name: "codespace_loads_total", help: "Loads of codespaces absent from the store, by result (loaded, new, failed)", labelNames: ["result"] as const, registers }),
  };
}
