import assert from 'node:assert/strict';
import { Backoff } from '../../protocol/backoff.js';
import { CuttleError } from '../../protocol/errors.js';

/** A random source that always returns `value`, so the ceiling itself is observable. */
const fixed = (value: number) => () => value;

describe('Backoff', () => {
  it('doubles the ceiling from initialMs up to maxMs', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: fixed(0.999999) });
    const delays = Array.from({ length: 7 }, () => backoff.next());
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
  });

  it('draws each delay uniformly under the ceiling (full jitter)', () => {
    const draws = [0, 0.5, 0.25];
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => draws.shift() ?? 0 });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 100, 100]);
  });

  it('starts again from initialMs after reset()', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: fixed(0.5) });
    backoff.next();
    backoff.next();
    backoff.next();
    assert.equal(backoff.ceilingMs, 800);
    backoff.reset();
    assert.equal(backoff.ceilingMs, 100);
    assert.equal(backoff.next(), 50);
  });

  it('defaults to 500 ms up to 30 s', () => {
    const backoff = new Backoff({ random: fixed(0.999999) });
    assert.equal(backoff.initialMs, 500);
    assert.equal(backoff.maxMs, 30_000);
    for (let i = 0; i < 100; i += 1) backoff.next();
    assert.equal(backoff.ceilingMs, 30_000);
    assert.equal(backoff.next(), 29_999);
  });

  it('never exceeds maxMs however many attempts', () => {
    const backoff = new Backoff({ initialMs: 1, maxMs: 50, random: Math.random });
    for (let i = 0; i < 2000; i += 1) {
      const delay = backoff.next();
      assert.ok(delay >= 0 && delay <= 50, `delay ${delay}`);
    }
  });

  it('rejects nonsensical settings with config-invalid', () => {
    for (const options of [{ initialMs: 0 }, { initialMs: -5 }, { initialMs: 100, maxMs: 50 }]) {
      assert.throws(
        () => new Backoff(options),
        (error) => error instanceof CuttleError && error.code === 'config-invalid',
      );
    }
  });
});
