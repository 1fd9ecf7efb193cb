import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` until it holds, or fails the test after `timeoutMs` naming `what`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms: ${what}`);
    await delay(intervalMs);
  }
}
