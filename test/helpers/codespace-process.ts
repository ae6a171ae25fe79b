/**
 * One server process's accept path, for tests that drive `Codespace` directly: its own RedisStore
 * connection and Codespace on a real redis-server, what its commit feed broadcast, its commit
 * conflicts and the epochs it was told to move to.
 */
import { Text } from "@codemirror/state";
import { Codespace } from "../../server/codespace.js";
import { RedisStore, type RedisStoreOptions } from "../../server/store/redis-store.js";
import type { InsertValueBroadcast, InsertValuePayload } from "../../protocol/events.js";
import { changesFromWire } from "../../protocol/wire.js";

export interface CodespaceProcess {
  store: RedisStore;
  cs: Codespace;
  /** Every update the feed had this process broadcast, in arrival order. */
  seen: InsertValueBroadcast[];
  /** Epochs `onEpochChanged` announced. */
  epochs: string[];
  conflicts(): number;
  /** Resolves once the feed delivered version `v` (or later). */
  reached(v: number): Promise<void>;
  /** Resolves once `onEpochChanged` was called. */
  epochChanged(): Promise<string>;
  close(): Promise<void>;
}

export async function codespaceProcess(id: string, store: Omit<RedisStoreOptions, "historyLength">): Promise<CodespaceProcess> {
  const s = await RedisStore.connect({ historyLength: 50, ...store });
  const seen: InsertValueBroadcast[] = [];
  const epochs: string[] = [];
  const waiters: { version: number; resolve: () => void }[] = [];
  const epochWaiters: ((e: string) => void)[] = [];
  let conflicts = 0;
  const cs = new Codespace(id, s, {
    historyLength: 50,
    maxDocLength: 10_000,
    ttlSeconds: 60,
    onCommitted: (updates) => {
      if (updates.length === 0) return;
      seen.push(...updates);
      const top = updates[updates.length - 1]!.version;
      for (const w of waiters.filter((w) => w.version <= top)) w.resolve();
    },
    onConflict: () => conflicts++,
    onEpochChanged: (epoch) => {
      epochs.push(epoch);
      for (const w of epochWaiters.splice(0)) w(epoch);
    },
  });
  return {
    store: s,
    cs,
    seen,
    epochs,
    conflicts: () => conflicts,
    reached: (v) => (seen.some((u) => u.version >= v) ? Promise.resolve() : new Promise((resolve) => waiters.push({ version: v, resolve }))),
    epochChanged: () => (epochs.length > 0 ? Promise.resolve(epochs[epochs.length - 1]!) : new Promise((resolve) => epochWaiters.push(resolve))),
    close: async () => {
      await cs.dispose();
      await s.close();
    },
  };
}

/** An `insert_value` batch of one update inserting `text` at `at`. */
export function insertBatch(epoch: string, version: number, clientID: string, at: number, text: string): InsertValuePayload {
  return { epoch, version, updates: [{ clientID, changes: [{ from: at, to: at, insert: text }] }] };
}

/** The text the broadcasts build from `start`, in version order. */
export function replay(start: string, updates: readonly InsertValueBroadcast[]): string {
  let doc = Text.of(start.split("\n"));
  for (const u of [...updates].sort((a, b) => a.version - b.version)) doc = changesFromWire(u.changes, doc.length).apply(doc);
  return doc.toString();
}
