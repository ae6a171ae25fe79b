/**
 * Durable saves (docs/integration.md, "Saves"): sends the code of unsaved codespaces to the `save`
 * hook (the HTTP sink of SAVE_URL), from any process, one process per codespace at a time.
 *
 * The state that must survive a crash lives in the store, in each codespace's own record (see
 * SaveState): the commit marks it unsaved and holds its TTL; this process only finds work (polling
 * `dueSaves`, a hint), claims it with a lease (`claimSave`: debounce SAVE_DEBOUNCE_MS, at most
 * SAVE_MAX_WAIT_MS), calls the hook with the code it read, and settles it (`settleSave`: the site
 * has that version; clean unless newer commits came). A failure (error, non-2xx/409 answer,
 * timeout SAVE_TIMEOUT_MS) keeps the lease for an exponential backoff with jitter (capped at
 * SAVE_RETRY_MAX_MS, the attempt count kept in the store) and retries, forever. When the process
 * dies, its lease lapses (SAVE_LEASE_MS at most) and another process's poll takes over.
 * Every sweep period (SAVE_MAX_WAIT_MS, from 1 s to 60 s) the process asks the store which of the
 * codespaces it committed to are still unsaved: it forgets the others (saved by any process), and the
 * store lists the unsaved ones in its due index again if a failover lost their entry.
 * Versions sent for a codespace only grow: each claim reads the current version, and leases outlast
 * a request. `tmp-` codespaces never reach here (their commits do not mark them unsaved).
 *
 * Logs: `codespace saved` (info), `save failed; will retry` (warn, with the attempt, the delay and
 * how long the codespace has been unsaved), `save step failed` (warn: the store was unavailable).
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { withTimeout, type HookFailures, type Hooks, type SaveOutcome } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { SaveState } from "../store/code-store.js";
import type { SaveMetrics } from "./save-metrics.js";

export interface SaverOptions {
  store: SaveState;
  save: NonNullable<Hooks["save"]>;
  debounceMs: number;
  maxWaitMs: number;
  leaseMs: number;
  timeoutMs: number;
  retryMaxMs: number;
  logger: Logger;
  metrics?: SaveMetrics;
  failures?: HookFailures;
}

/** First retry delay before jitter, ms. */
const RETRY_BASE_MS = 250;
/** Codespaces read from the due index per poll. */
const POLL_LIMIT = 100;
/** Codespaces asked about per `unsaved` call of a sweep. */
const SWEEP_CHUNK = 200;
/** Bounds of the sweep period (SAVE_MAX_WAIT_MS clamped to them), ms. */
const SWEEP_MIN_MS = 1000;
const SWEEP_MAX_MS = 60_000;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Saver {
  /** This process's claim owner id: host, pid and a random part. */
  readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<string, Promise<void>>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  /** Codespaces whose last save attempt here failed: when their first unsaved commit was, by this process's clock (ms). */
  private readonly unsavedSince = new Map<string, number>();
  /**
   * Codespaces this process committed (or retried) and has not seen saved, each with the number of
   * the last `owe` (a sweep forgets an entry only if no commit came after it asked): flushed at
   * shutdown, checked by each sweep.
   */
  private readonly owed = new Map<string, number>();
  private owings = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly pollMs: number;

  constructor(private readonly o: SaverOptions) {
    this.pollMs = Math.min(1000, Math.max(20, Math.floor(o.debounceMs / 2)));
  }

  /** Starts polling for due saves, and sweeping what this process owes. */
  start(): void {
    this.schedulePoll();
    const every = Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, this.o.maxWaitMs));
    this.sweepTimer = setInterval(() => void this.sweep().catch((err: unknown) => this.o.logger.debug({ err: describe(err) }, "save sweep failed")), every);
    this.sweepTimer.unref();
  }

  /** This process committed to `codespace` (it owes that save at shutdown). */
  committed(codespace: string): void {
    this.owe(codespace);
  }

  /**
   * The store's `codespace` is gone (expired or deleted): forgotten here. If this process was
   * waiting to retry its save (it holds the claim: nobody else saves it meanwhile), the retry runs
   * now; its claim finds the codespace gone and `reportLost` says the site never took its latest
   * commits: one error line, `codespace_saves_total{result="lost"}`.
   */
  expired(codespace: string): void {
    this.owed.delete(codespace);
    // a retry that was waiting runs now: its claim finds the codespace gone and reports the loss (an
    // attempt in progress does the same at its retry)
    const retry = this.retries.get(codespace);
    if (!retry || this.closed) return;
    clearTimeout(retry);
    this.retries.delete(codespace);
    void this.run(codespace, false);
  }

  /** A codespace whose saves were failing is gone from the store: one error line, counted once. */
  private reportLost(codespace: string): void {
    const since = this.unsavedSince.get(codespace);
    this.unsavedSince.delete(codespace);
    this.o.metrics?.saves.inc({ result: "lost" });
    this.o.logger.error(
      { codespace, unsavedForS: since === undefined ? undefined : Math.round((Date.now() - since) / 1000) },
      "codespace expired before the site took its latest commits (its saves kept failing until SAVE_MAX_RETENTION_S ran out): those commits are lost",
    );
  }

  /** Codespaces this process owes a save (diagnostics and tests). */
  get owedCount(): number {
    return this.owed.size;
  }

  /**
   * Asks the store which owed codespaces are still unsaved (SaveState.unsaved, which also re-lists
   * them in its due index) and forgets the others, so that `owed` holds only recent or unsaved work
   * (not every codespace this process ever committed to and another process saved). Codespaces being
   * saved or waiting for a retry here are skipped. @throws StoreUnavailableError
   */
  async sweep(): Promise<void> {
    const ids = [...this.owed.keys()].filter((id) => !this.running.has(id) && !this.retries.has(id));
    for (let i = 0; i < ids.length && !this.closed; i += SWEEP_CHUNK) {
      const chunk = ids.slice(i, i + SWEEP_CHUNK);
      const asked = chunk.map((id) => this.owed.get(id));
      const still = new Set(await this.o.store.unsaved(chunk));
      chunk.forEach((id, j) => {
        if (!still.has(id) && this.owed.get(id) === asked[j]) this.owed.delete(id);
      });
    }
  }

  private owe(codespace: string): void {
    this.owed.set(codespace, ++this.owings);
  }

  /**
   * Graceful shutdown: stops polling, then within `flushMs` tries once (no debounce) to save what this
   * process owes; a codespace still unsaved is left claimable by the others (lease released), never
   * lost: its unsaved state stays in the store.
   */
  async close(flushMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.sweepTimer);
    for (const [id, t] of this.retries) {
      clearTimeout(t);
      this.owe(id);
    }
    this.retries.clear();
    const deadline = new Promise<void>((r) => setTimeout(r, flushMs).unref());
    await Promise.race([Promise.allSettled([...this.running.values()]), deadline]);
    const flush = [...this.owed.keys()].filter((id) => !this.running.has(id)).map((id) => this.run(id, true));
    await Promise.race([Promise.allSettled(flush), deadline]);
    await Promise.allSettled([...this.running.keys()].map((id) => this.o.store.releaseSave(id, this.owner)));
  }

  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => void this.poll().finally(() => this.schedulePoll()), this.pollMs);
    this.pollTimer.unref();
  }

  private async poll(): Promise<void> {
    let ids: string[];
    try {
      ids = await this.o.store.dueSaves(POLL_LIMIT);
    } catch (err) {
      this.o.logger.debug({ err: describe(err) }, "could not read the due saves");
      return;
    }
    for (const id of ids) if (!this.closed && !this.running.has(id) && !this.retries.has(id)) void this.run(id, false);
  }

  private run(id: string, force: boolean): Promise<void> {
    const p = this.attempt(id, force)
      .catch((err: unknown) => this.o.logger.warn({ codespace: id, err: describe(err) }, "save step failed"))
      .finally(() => this.running.delete(id));
    this.running.set(id, p);
    return p;
  }

  private async attempt(id: string, force: boolean): Promise<void> {
    const { store, logger, metrics } = this.o;
    const claim = await store.claimSave(id, { owner: this.owner, leaseMs: this.o.leaseMs, debounceMs: this.o.debounceMs, maxWaitMs: this.o.maxWaitMs, force });
    if (claim.status === "gone" || claim.status === "clean") {
      this.owed.delete(id);
      if (claim.status === "gone" && this.unsavedSince.has(id)) this.reportLost(id);
      this.unsavedSince.delete(id);
      return;
    }
    if (claim.status === "busy") return;
    const started = Date.now();
    let outcome: SaveOutcome;
    try {
      outcome = await withTimeout("save", this.o.timeoutMs, (signal) =>
        this.o.save({ codespace: id, epoch: claim.epoch, version: claim.version, code: claim.code, signal }),
      );
      if (outcome !== "saved" && outcome !== "conflict") throw new TypeError(`the save hook answered ${String(outcome)}`);
    } catch (err) {
      metrics?.saves.inc({ result: "failed" });
      this.o.failures?.count("save", err);
      const unsavedForS = Math.round((claim.now - claim.dirtySince + Date.now() - started) / 1000);
      if (this.closed) {
        await store.releaseSave(id, this.owner);
        logger.warn({ codespace: id, version: claim.version, unsavedForS, err: describe(err) }, "save failed at shutdown; left to the other processes");
        return;
      }
      const cap = Math.min(this.o.retryMaxMs, RETRY_BASE_MS * 2 ** Math.min(claim.attempts, 20));
      const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
      await store.deferSave(id, this.owner, delay);
      this.owe(id);
      this.unsavedSince.set(id, Date.now() - unsavedForS * 1000);
      logger.warn({ codespace: id, version: claim.version, attempt: claim.attempts + 1, retryInMs: delay, unsavedForS, err: describe(err) }, "save failed; will retry");
      const t = setTimeout(() => {
        this.retries.delete(id);
        if (!this.closed) void this.run(id, false);
      }, delay);
      this.retries.set(id, t);
      return;
    }
    metrics?.saves.inc({ result: outcome });
    metrics?.lag.observe(Math.max(0, claim.now - claim.dirtySince + Date.now() - started) / 1000);
    const state = await store.settleSave(id, this.owner, {
      epoch: claim.epoch,
      version: claim.version,
      claimedAt: claim.now,
      debounceMs: this.o.debounceMs,
      maxWaitMs: this.o.maxWaitMs,
    });
    if (state !== "dirty") this.owed.delete(id);
    this.unsavedSince.delete(id);
    logger.info({ codespace: id, version: claim.version, result: outcome, state }, "codespace saved");
  }
}
