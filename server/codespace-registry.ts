/**
 * The codespaces this process has sockets in: one Codespace (cache + accept queue) per id, kept
 * while at least one local socket holds it and its queue is busy, dropped afterwards.
 */
import { TMP_TOKEN_PREFIX } from "../protocol/constants.js";
import type { Config } from "./config.js";
import { Codespace, type StoredCommit } from "./codespace.js";
import type { InsertValueBroadcast } from "./protocol/events.js";
import type { CodeStore, CommitSave, Snapshot } from "./store/code-store.js";

/** True for temporary codespaces (their TTL is TMP_CODESPACE_EXPIRE_UPDATE). */
export function isTemporary(codespace: string): boolean {
  return codespace.startsWith(TMP_TOKEN_PREFIX);
}

/** Durable saves of non-`tmp-` codespaces (server/persistence/). */
export interface RegistryPersistence {
  /** Opens a codespace, loading it from the site when the store does not have it. */
  open?(codespace: string, ttlSeconds: number): Promise<Snapshot>;
  /** Commits mark the codespace unsaved with these settings. */
  save?: CommitSave;
}

/** What the registry's codespaces report to the rest of the process. */
export interface RegistryEvents {
  /** Sends a commit's updates to this process's sockets of the codespace. */
  broadcast(codespace: string, updates: InsertValueBroadcast[]): void;
  /** Called after each commit this process made (metrics, the onCommit hook, saves). */
  onStored?(codespace: string, count: number, commit: StoredCommit): void;
  /** Called when a commit of this process lost the compare-and-set and is retried (CodespaceOptions.onConflict). */
  onConflict?(codespace: string): void;
  /** The codespace moved to epoch `epoch` under this process's sockets (CodespaceOptions.onEpochChanged). */
  onEpochChanged?(codespace: string, epoch: string): void;
}

export class CodespaceRegistry {
  private readonly open = new Map<string, { codespace: Codespace; refs: number }>();

  constructor(
    private readonly store: CodeStore,
    private readonly config: Pick<Config, "historyLength" | "maxDocLength" | "maxRebaseWork" | "codespaceExpireUpdate" | "tmpCodespaceExpireUpdate">,
    private readonly events: RegistryEvents,
    private readonly persistence: RegistryPersistence = {},
  ) {}

  /** Number of codespaces held by this process. */
  get size(): number {
    return this.open.size;
  }

  /** The TTL of codespace `id` after each update, seconds (TMP_CODESPACE_EXPIRE_UPDATE for `tmp-` ones, else CODESPACE_EXPIRE_UPDATE). */
  ttlSeconds(id: string): number {
    return isTemporary(id) ? this.config.tmpCodespaceExpireUpdate : this.config.codespaceExpireUpdate;
  }

  /** Takes a reference on `id` (one per local socket). */
  acquire(id: string): Codespace {
    let held = this.open.get(id);
    if (!held) {
      const c = this.config;
      const ttlSeconds = this.ttlSeconds(id);
      const p = isTemporary(id) ? {} : this.persistence;
      held = {
        refs: 0,
        codespace: new Codespace(id, this.store, {
          historyLength: c.historyLength,
          maxDocLength: c.maxDocLength,
          maxRebaseWork: c.maxRebaseWork,
          ttlSeconds,
          open: p.open && (() => p.open!(id, ttlSeconds)),
          save: p.save,
          onCommitted: (updates) => this.events.broadcast(id, updates),
          onStored: (count, commit) => this.events.onStored?.(id, count, commit),
          onConflict: () => this.events.onConflict?.(id),
          onEpochChanged: (epoch) => this.events.onEpochChanged?.(id, epoch),
        }),
      };
      this.open.set(id, held);
    }
    held.refs++;
    return held.codespace;
  }

  /** The codespace `id` while held (between `acquire` and the release of its last reference). */
  held(id: string): Codespace | undefined {
    return this.open.get(id)?.codespace;
  }

  /** Drops a reference; the codespace is forgotten once unreferenced and idle. */
  release(id: string): void {
    const held = this.open.get(id);
    if (!held) return;
    held.refs--;
    if (held.refs > 0) return;
    void held.codespace.idle().then(() => {
      if (held.refs === 0 && this.open.get(id) === held) {
        this.open.delete(id);
        void held.codespace.dispose().catch(() => {});
      }
    });
  }

  /** The codespace's stored state expired or was deleted: forget the cached copy. */
  invalidate(id: string): void {
    this.open.get(id)?.codespace.invalidate();
  }

  /** Resolves once every queued batch is committed (graceful shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.open.values()].map((h) => h.codespace.idle()));
  }
}
