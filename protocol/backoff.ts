/**
 * Reconnect delays: capped exponential backoff with full jitter (PROTOCOL.md section 1). Full jitter
 * (a uniform draw between 0 and the current ceiling) spreads a fleet of agents that all lost the
 * same server, so they do not reconnect in lock-step when it comes back.
 */
import { CuttleError } from './errors.js';

export const DEFAULT_BACKOFF_INITIAL_MS = 500;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** A source of numbers in [0, 1); injected by tests. */
  random?: () => number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS;
    this.maxMs = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
    this.#random = options.random ?? Math.random;
    if (!Number.isFinite(this.initialMs) || this.initialMs <= 0) {
      throw new CuttleError(
        'config-invalid',
        `backoff initialMs must be > 0 (got ${this.initialMs})`,
      );
    }
    if (!Number.isFinite(this.maxMs) || this.maxMs < this.initialMs) {
      throw new CuttleError(
        'config-invalid',
        `backoff maxMs must be >= initialMs ${this.initialMs} (got ${this.maxMs})`,
      );
    }
  }

  /** The ceiling the next delay is drawn under: initialMs doubled per attempt, capped at maxMs. */
  get ceilingMs(): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** this.#attempt);
  }

  /** The delay before the next attempt, in [0, ceilingMs]; each call raises the ceiling. */
  next(): number {
    const ceiling = this.ceilingMs;
    // Stop counting once capped, so 2 ** attempt never grows without bound.
    if (ceiling < this.maxMs) this.#attempt += 1;
    return Math.floor(this.#random() * ceiling);
  }

  /** Back to initialMs, after a connection that worked. */
  reset(): void {
    this.#attempt = 0;
  }
}
