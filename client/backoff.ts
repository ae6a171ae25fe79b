/**
 * Exponential backoff with jitter for retrying transient server errors.
 * Delays in milliseconds: `base * 2^attempt`, capped at `max`, then scaled by a random 0.5–1.
 */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly base = 100,
    private readonly max = 5000,
  ) {}

  /** The next delay (ms); each call doubles the following one up to `max`. */
  next(): number {
    const raw = Math.min(this.max, this.base * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(raw * (0.5 + Math.random() / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
