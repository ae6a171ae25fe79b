/**
 * Exponential backoff with jitter for retrying transient server errors.
 * Delays in milliseconds: `base * 2^attempt`, capped at `max`, then scaled by a random 0.5–1.
 */
export class Backoff {
    base;
    max;
    #attempt = 0;
    constructor(base = 100, max = 5000) {
        this.base = base;
        this.max = max;
    }
    /** The next delay (ms); each call doubles the following one up to `max`. */
    next() {
        const raw = Math.min(this.max, this.base * 2 ** this.#attempt);
        this.#attempt = Math.min(this.#attempt + 1, 30);
        return Math.round(raw * (0.5 + Math.random() / 2));
    }
    reset() {
        this.#attempt = 0;
    }
}
//# sourceMappingURL=backoff.js.map