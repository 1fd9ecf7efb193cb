import { CuttleError } from '../protocol/errors.js';

/**
 * One caller's view of shared work: calls to its hooks are queued so they keep their order and
 * never run concurrently; the first hook failure is kept and thrown by flush().
 */
export class Subscriber {
  #tail: Promise<void> = Promise.resolve();
  #error: { value: unknown } | undefined;

  enqueue(call: () => Promise<void>): void {
    this.#tail = this.#tail.then(call).catch((error: unknown) => {
      this.#error ??= { value: error };
    });
  }

  /** Waits for every queued call; throws the first hook failure. */
  async flush(): Promise<void> {
    await this.#tail;
    if (this.#error !== undefined) throw this.#error.value;
  }
}

/**
 * A pull or build in progress that several callers may wait for. It is cancelled (through its
 * AbortSignal) when the last caller waiting for it leaves before it ends.
 */
export class Flight<T, S extends Subscriber = Subscriber> {
  readonly subscribers = new Set<S>();
  readonly startedMs = Date.now();
  readonly #controller = new AbortController();
  readonly promise: Promise<T>;
  #settled = false;

  constructor(
    work: (flight: Flight<T, S>) => Promise<T>,
    private readonly onEnd: () => void,
  ) {
    this.promise = (async () => {
      // Start on a later tick, so the creator has stored the flight before onEnd can run.
      await Promise.resolve();
      try {
        return await work(this);
      } finally {
        this.#settled = true;
        onEnd();
      }
    })();
    // Every caller awaits it through join(); nobody may be left when it fails.
    this.promise.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Calls fn for every subscriber present now. */
  broadcast(fn: (subscriber: S) => void): void {
    for (const subscriber of this.subscribers) fn(subscriber);
  }

  /** Waits for the work as one more subscriber; the caller's signal cancels only its own wait. */
  async join(subscriber: S, signal?: AbortSignal): Promise<T> {
    this.subscribers.add(subscriber);
    try {
      return await raceAbort(this.promise, signal);
    } finally {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0 && !this.#settled) {
        this.#controller.abort(new CuttleError('internal', 'nobody waits for this work any more'));
        this.onEnd();
      }
    }
  }
}

/** The signal's reason when it is an Error, else a generic cancellation. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new CuttleError('internal', 'the task was cancelled');
}

export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
