/**
 * Promises that resolve once a condition holds; re-checked by the owner after each state change.
 */
interface Waiter {
  done: () => boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Waiters {
  readonly #waiting = new Set<Waiter>();

  /** Resolves as soon as `done()` is true (checked now and on every `check()`). */
  wait(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiting.add({ done, resolve, reject }));
  }

  /** Resolves every waiter whose condition now holds. */
  check(): void {
    for (const w of [...this.#waiting]) {
      if (w.done()) {
        this.#waiting.delete(w);
        w.resolve();
      }
    }
  }

  /** Rejects every pending waiter with `err`. */
  rejectAll(err: Error): void {
    const all = [...this.#waiting];
    this.#waiting.clear();
    for (const w of all) w.reject(err);
  }
}
