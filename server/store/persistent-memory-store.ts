/**
 * The embedded default's store: a MemoryStore whose codespaces survive a restart of the process.
 * Every codespace lives in DATA_DIR (data-dir.ts, one atomically written file each). At start the
 * saved codespaces come back with their epoch, version, code, history and remaining TTL (expired
 * ones are dropped and their files removed); while running, changed codespaces are written every
 * FLUSH_INTERVAL_MS (only when something changed) and once more by `close()` (graceful shutdown).
 *
 * Durability: a graceful stop (SIGTERM/SIGINT) keeps every acknowledged update; a crash (SIGKILL,
 * power loss) loses at most the updates of the last FLUSH_INTERVAL_MS.
 */
import { DataDir } from "./data-dir.js";
import { MemoryStore } from "./memory-store.js";

/** How often changed codespaces are written to DATA_DIR, milliseconds. */
export const FLUSH_INTERVAL_MS = 2000;

export interface PersistentMemoryStoreOptions {
  historyLength: number;
  /** DATA_DIR: the folder (created if missing). */
  dataDir: string;
  logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class PersistentMemoryStore extends MemoryStore {
  private readonly dir: DataDir;
  private readonly dirty: Set<string>;
  private readonly logger: PersistentMemoryStoreOptions["logger"];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private failing = false;

  private constructor(options: PersistentMemoryStoreOptions) {
    const dirty = new Set<string>();
    super({ historyLength: options.historyLength, onChange: (codespace) => dirty.add(codespace) });
    this.dirty = dirty;
    this.dir = new DataDir(options.dataDir);
    this.logger = options.logger;
  }

  /**
   * Prepares DATA_DIR, restores the saved codespaces and starts the periodic writes.
   * @throws DataDirError (one line) when the folder cannot be created, written or read.
   */
  static async open(options: PersistentMemoryStoreOptions): Promise<PersistentMemoryStore> {
    const store = new PersistentMemoryStore(options);
    await store.dir.prepare();
    await store.dir.lock((err) => store.logger?.error({ dataDir: store.dir.path, err: err.message }, "data: the lock of DATA_DIR was lost; another process may be writing it"));
    const saved = await store.dir.loadAll((file, reason) => store.logger?.warn({ file, reason }, "data: skipped an unreadable file"));
    let restored = 0;
    for (const rec of saved) {
      if (store.restore(rec)) restored++;
      else await store.dir.remove(rec.codespace);
    }
    store.dirty.clear();
    store.logger?.info({ dataDir: store.dir.path, restored, expired: saved.length - restored }, "data: codespaces restored");
    store.timer = setInterval(() => void store.flush(), FLUSH_INTERVAL_MS);
    store.timer.unref();
    return store;
  }

  /** Absolute path of DATA_DIR. */
  get dataDir(): string {
    return this.dir.path;
  }

  /**
   * Writes every changed codespace now (removing the files of expired or deleted ones). Writes are
   * serialized; a failed write keeps the codespace dirty and logs once until writes succeed again.
   */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeDirty());
    return this.flushing;
  }

  /** Stops the periodic writes, writes what changed, then clears memory (see MemoryStore.close). */
  override async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await this.dir.unlock();
    await super.close();
  }

  private async writeDirty(): Promise<void> {
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    let failed = 0;
    for (const id of ids) {
      const json = this.savedJson(id);
      try {
        if (json !== undefined) await this.dir.write(id, json);
        else await this.dir.remove(id);
      } catch (err) {
        failed++;
        this.dirty.add(id);
        if (!this.failing) this.logger?.error({ dataDir: this.dir.path, err: (err as Error).message }, "data: write failed; retrying");
      }
    }
    if (failed === 0 && this.failing) this.logger?.info({ dataDir: this.dir.path }, "data: writes succeed again");
    this.failing = failed > 0;
  }
}
