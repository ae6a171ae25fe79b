/**
 * Durable saves and loads wired from the hooks (the site's `save`/`load`, or the HTTP sink of
 * SAVE_URL): a Saver (saver.ts), a Loader (loader.ts), the handshake middleware that loads absent
 * codespaces (load-middleware.ts) and the metrics (save-metrics.ts). Without a `save` hook nothing
 * is saved; without a `load` hook nothing is loaded.
 */
import type { Namespace } from "socket.io";
import type { RegistryPersistence } from "../codespace-registry.js";
import type { Config } from "../config.js";
import type { HookFailures, ResolvedHooks } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { CodeStore } from "../store/code-store.js";
import { Loader } from "./loader.js";
import { loadMiddleware } from "./load-middleware.js";
import { createSaveMetrics } from "./save-metrics.js";
import { Saver } from "./saver.js";

export interface Persistence {
  /** For the codespace registry: opening through the loader, commits marked unsaved. */
  registry: RegistryPersistence;
  /** This process committed to `codespace`. */
  committed(codespace: string): void;
  /** The store's `codespace` expired or was deleted (any process's, held here or not). */
  expired(codespace: string): void;
  /** Adds the load-before-edit middleware (after authentication) when there is a load hook. */
  attach(nsp: Namespace): void;
  /** Starts polling for due saves. */
  start(): void;
  /** Graceful shutdown: saves what this process owes within `flushMs`, or leaves it claimable. */
  close(flushMs: number): Promise<void>;
}

export interface PersistenceDeps {
  config: Config;
  store: CodeStore;
  hooks: ResolvedHooks;
  logger: Logger;
  metrics: Metrics;
  failures: HookFailures;
}

export function createPersistence({ config, store, hooks, logger, metrics, failures }: PersistenceDeps): Persistence {
  const saveMetrics = createSaveMetrics(metrics.registry, () => store.unsavedCount());
  const loader = hooks.load && new Loader({ store, load: hooks.load, timeoutMs: config.saveTimeoutMs, logger, metrics: saveMetrics, failures });
  const saver =
    hooks.save &&
    new Saver({
      store,
      save: hooks.save,
      logger,
      metrics: saveMetrics,
      failures,
      debounceMs: config.saveDebounceMs,
      maxWaitMs: config.saveMaxWaitMs,
      leaseMs: config.saveLeaseMs,
      timeoutMs: config.saveTimeoutMs,
      retryMaxMs: config.saveRetryMaxMs,
    });
  return {
    registry: {
      open: loader && ((id, ttl) => loader.open(id, ttl)),
      save: saver && { debounceMs: config.saveDebounceMs, maxWaitMs: config.saveMaxWaitMs, retentionSeconds: config.saveMaxRetentionS },
    },
    committed: (codespace) => saver?.committed(codespace),
    expired: (codespace) => saver?.expired(codespace),
    attach(nsp) {
      if (loader) nsp.use(loadMiddleware(loader, config.codespaceExpireUpdate, logger));
    },
    start: () => saver?.start(),
    close: async (flushMs) => saver?.close(flushMs),
  };
}
