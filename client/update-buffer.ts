/**
 * Orders versioned updates: broadcasts can arrive out of version order (several server processes)
 * and overlap with `pull` results. `version` is the version *after* the update, so the update that
 * follows synced version `v` has version `v + 1`.
 */
export interface Versioned {
  version: number;
}

export class UpdateBuffer<U extends Versioned> {
  readonly #pending = new Map<number, U>();

  /**
   * Buffers `update` unless it is at or below `synced` or its version is already buffered
   * (duplicates keep the first copy). Returns whether it was kept.
   */
  add(update: U, synced: number): boolean {
    if (!Number.isInteger(update.version) || update.version <= synced) return false;
    if (this.#pending.has(update.version)) return false;
    this.#pending.set(update.version, update);
    return true;
  }

  /**
   * Removes and returns the contiguous run `synced + 1, synced + 2, ...` (possibly empty), and drops
   * everything at or below `synced`.
   */
  take(synced: number): U[] {
    this.prune(synced);
    const run: U[] = [];
    for (let v = synced + 1; this.#pending.has(v); v++) {
      run.push(this.#pending.get(v)!);
      this.#pending.delete(v);
    }
    return run;
  }

  /** True when updates above `synced + 1` wait for a missing one (call after `take`). */
  hasGap(synced: number): boolean {
    for (const v of this.#pending.keys()) if (v > synced) return true;
    return false;
  }

  /** Drops every buffered update at or below `synced`. */
  prune(synced: number): void {
    for (const v of this.#pending.keys()) if (v <= synced) this.#pending.delete(v);
  }

  /** Lowest buffered version, or `undefined` when empty. */
  lowest(): number | undefined {
    let min: number | undefined;
    for (const v of this.#pending.keys()) if (min === undefined || v < min) min = v;
    return min;
  }

  get size(): number {
    return this.#pending.size;
  }

  clear(): void {
    this.#pending.clear();
  }
}
