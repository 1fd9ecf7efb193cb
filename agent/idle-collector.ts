/**
 * A full garbage collection once the agent falls idle after work. A busy step leaves megabytes of
 * garbage outside V8's heap (the journal's event buffers, WebSocket frames: ~9 MiB after a step that
 * printed 4 MB), which only a full collection frees, and an idle agent allocates too little for V8
 * to run one: measured, an agent stayed at 65 MiB resident instead of 56 for as long as it was idle
 * (docs/performance.md, round 10). A full collection of the agent's small heap takes milliseconds.
 *
 * Node has no call for it without `--expose-gc` on its command line, which a user's systemd unit or
 * `node` invocation may not carry: the flag is set at run time, and the function is taken from a
 * new context, the only place V8 installs it after start-up.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export class IdleCollector {
  readonly #delayMs: number;
  #timer: NodeJS.Timeout | undefined;
  #collect: (() => void) | undefined;
  /** Collections run so far. */
  collections = 0;

  constructor(delayMs = 1000) {
    this.#delayMs = delayMs;
  }

  /** Work ended and none is left: collect after the delay, unless more work ends first. */
  workEnded(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.collectNow(), this.#delayMs);
    this.#timer.unref();
  }

  /** Work started again: the collection waits for it to end. */
  workStarted(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A full collection now (synchronous); where the runtime offers none, nothing. */
  collectNow(): void {
    this.#timer = undefined;
    try {
      this.#collect ??= fullCollection();
      this.#collect();
      this.collections += 1;
    } catch {
      // Called from a timer, a throw would end the agent: without it, there is nothing to do.
      this.#collect = () => undefined;
    }
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  // A runtime that ignores the flag has no `gc` in the new context: nothing to do then.
  const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
  return isCallable(gc) ? () => gc() : () => undefined;
}

function isCallable(value: unknown): value is () => unknown {
  return typeof value === 'function';
}
