/**
 * Exponential backoff with jitter for retrying transient server errors.
 * Delays in milliseconds: `base * 2^attempt`, capped at `max`, then scaled by a random 0.5–1.
 */
export declare class Backoff {
    #private;
    private readonly base;
    private readonly max;
    constructor(base?: number, max?: number);
    /** The next delay (ms); each call doubles the following one up to `max`. */
    next(): number;
    reset(): void;
}
