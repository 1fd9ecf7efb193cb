import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdleCollector } from '../../agent/idle-collector.js';

const MIB = 1024 * 1024;

/**
 * 16 MiB of buffers outside V8's heap, alive until the returned function drops them. They are
 * first moved to V8's old generation (by making the young one collect a few times), as a task's
 * buffers are: there only a full collection frees them, so what frees them in the test is the
 * collector and not a chance scavenge.
 */
function externalGarbage(): { drop: () => void } {
  let buffers: Buffer[] | undefined = Array.from({ length: 64 }, () =>
    Buffer.allocUnsafe(256 * 1024).fill(1),
  );
  let churn = 0;
  for (let i = 0; i < 2_000_000; i++) churn += [i, i + 1].length;
  assert.equal(churn, 4_000_000);
  return {
    drop: () => {
      assert.equal(buffers?.length, 64);
      buffers = undefined;
    },
  };
}

/** Bytes of ArrayBuffers freed since `before`, waiting up to `ms` for V8's concurrent sweeper. */
async function freedSince(before: number, atLeast: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let freed = before - process.memoryUsage().arrayBuffers;
  while (freed < atLeast && Date.now() < deadline) {
    await sleep(10);
    freed = before - process.memoryUsage().arrayBuffers;
  }
  return freed;
}

describe('IdleCollector', () => {
  it('frees buffers nothing references, which V8 left for a collection that never came', async () => {
    const garbage = externalGarbage();
    const held = process.memoryUsage().arrayBuffers;
    garbage.drop();
    new IdleCollector().collectNow();
    const freed = await freedSince(held, 15 * MIB, 1000);
    assert.ok(freed >= 15 * MIB, `${(freed / MIB).toFixed(1)} MiB freed`);
  });

  it('collects once work has ended and the delay passed, not while work runs', async () => {
    const collector = new IdleCollector(30);
    collector.workEnded();
    collector.workStarted();
    await sleep(60);
    assert.equal(collector.collections, 0, 'work started again before the delay');
    collector.workEnded();
    collector.workEnded(); // the delay restarts: still one collection
    await sleep(60);
    assert.equal(collector.collections, 1);
    collector.dispose();
  });
});
