/**
 * Load before edit: a non-tmp codespace absent from the store is loaded with the `load` hook (the
 * HTTP sink: `GET ${SAVE_URL}<codespace>`) before anyone can edit it, and created with that code
 * (404/null: new and empty). When the site cannot answer (error, timeout SAVE_TIMEOUT_MS) the caller
 * gets `codespace_unavailable` and nothing is created: an existing codespace is never started from
 * empty, so nothing is ever saved over the site's copy from a failed load. Concurrent opens of the
 * same codespace in this process share one load; two processes may both load, and the store's
 * create-if-absent keeps the first.
 */
import { CodespaceUnavailableError } from "../errors.js";
import { withTimeout, type HookFailures, type Hooks } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { CodeStore, Snapshot } from "../store/code-store.js";
import { wellFormed } from "../../protocol/wire.js";
import type { SaveMetrics } from "./save-metrics.js";

export interface LoaderOptions {
  store: CodeStore;
  load: NonNullable<Hooks["load"]>;
  timeoutMs: number;
  logger: Logger;
  metrics?: SaveMetrics;
  failures?: HookFailures;
}

export class Loader {
  private readonly inFlight = new Map<string, Promise<Snapshot>>();

  constructor(private readonly o: LoaderOptions) {}

  /**
   * The codespace's state, loading it from the site first when the store does not have it.
   * @throws CodespaceUnavailableError, StoreUnavailableError
   */
  open(codespace: string, ttlSeconds: number): Promise<Snapshot> {
    let p = this.inFlight.get(codespace);
    if (!p) {
      p = this.openOnce(codespace, ttlSeconds).finally(() => this.inFlight.delete(codespace));
      this.inFlight.set(codespace, p);
    }
    return p;
  }

  private async openOnce(codespace: string, ttlSeconds: number): Promise<Snapshot> {
    const existing = await this.o.store.load(codespace);
    if (existing) return existing;
    // a record the site wrote itself (code without an epoch) is adopted as it is, not loaded
    if (await this.o.store.exists(codespace)) return this.o.store.open(codespace, ttlSeconds);
    let loaded: { code: string } | null;
    try {
      loaded = await withTimeout("load", this.o.timeoutMs, (signal) => this.o.load({ codespace, signal }));
      if (loaded !== null && typeof loaded?.code !== "string") throw new TypeError("the load hook answered without a string code");
    } catch (err) {
      this.o.metrics?.loads.inc({ result: "failed" });
      this.o.failures?.report("load", codespace, err);
      throw new CodespaceUnavailableError();
    }
    this.o.metrics?.loads.inc({ result: loaded ? "loaded" : "new" });
    this.o.logger.info({ codespace, result: loaded ? "loaded" : "new", length: loaded?.code.length ?? 0 }, "codespace loaded from the site");
    // a lone surrogate cannot be stored as UTF-8 (Redis would hold U+FFFD while this process's
    // clients saw the surrogate): replaced by U+FFFD here, so everyone and the store agree
    return this.o.store.open(codespace, ttlSeconds, wellFormed(loaded?.code ?? ""));
  }
}
