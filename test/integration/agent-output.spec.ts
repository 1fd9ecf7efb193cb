/**
 * The agent end to end, step output: every line arrives once and in order, exit codes map to
 * outcomes, and a connection cut mid-step loses nothing (PROTOCOL.md sections 2 and 4).
 */
import assert from 'node:assert/strict';
import { readdir, readlink } from 'node:fs/promises';
import type { AgentMessage } from '../../protocol/index.js';
import {
  AgentEnv,
  assertSameLines,
  demoTask,
  eventually,
  numbered,
  streamLines,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
} from '../support/agent-harness.js';

/** Whether this process (the agent runs in it) has a file open whose path contains `part`. */
async function holdsOpen(part: string): Promise<boolean> {
  const links = await Promise.all(
    (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return links.some((link) => link.includes(part));
}

describe('agent end to end: step output', function () {
  this.timeout(60_000);
  let env: AgentEnv;

  before(async () => {
    env = await AgentEnv.start();
  });

  after(async () => {
    await env?.dispose();
  });

  afterEach(function () {
    env?.reportOnFailure(this);
  });

  it('loses none of 10,000 numbered stdout lines, and numbers the events 1..N without gaps', async () => {
    const taskId = uniqueTaskId('lines');
    // Every event the agent puts on the wire for this task, in the order it sent them.
    const sent: number[] = [];
    const onMessage = (message: AgentMessage): void => {
      if (message.type === 'event' && message.taskId === taskId) sent.push(message.seq);
    };
    env.server.on('agent-message', onMessage);
    try {
      const { handle, result } = await env.run(demoTask(taskId, 'seq 1 10000'));
      assert.equal(result.outcome, 'success');
      assert.equal(result.exitCode, 0);
      assertSameLines(streamLines(handle, 'stdout'), numbered(10_000));
      const stored = handle.events.map((e) => e.seq);
      assert.deepEqual(stored, numbered(stored.length).map(Number), 'stored seqs are 1..N');
      // Without a reconnect, the agent sends each seq once, in order, with no gap.
      assert.deepEqual(sent, stored, 'the seqs the agent sent are 1..N, each once, in order');
      assert.equal(handle.events.at(-1)?.kind, 'result', 'the result is the last event');
      // The output files stay open until the result (their removal is then instant), not after.
      await eventually(
        async () => !(await holdsOpen(`-${taskId}-`)),
        'the agent to close the step output files it followed',
      );
    } finally {
      env.server.off('agent-message', onMessage);
    }
  });

  it('maps exit 0 to success and exit code 0', async () => {
    const { handle, result } = await env.run(demoTask(uniqueTaskId('exit0'), 'echo fine\nexit 0'));
    assert.equal(result.outcome, 'success');
    assert.equal(result.exitCode, 0);
    assert.deepEqual(streamLines(handle, 'stdout'), ['fine']);
  });

  it('maps exit 3 to failure and exit code 3, with stderr lines on the stderr stream', async () => {
    const { handle, result } = await env.run(
      demoTask(
        uniqueTaskId('exit3'),
        'echo to-stdout\necho to-stderr-1 >&2\necho to-stderr-2 >&2\nexit 3',
      ),
    );
    assert.equal(result.outcome, 'failure');
    assert.equal(result.exitCode, 3);
    assert.deepEqual(streamLines(handle, 'stdout'), ['to-stdout']);
    assert.deepEqual(streamLines(handle, 'stderr'), ['to-stderr-1', 'to-stderr-2']);
  });

  it('keeps the step running across connection cuts and stores every line once, in order', async () => {
    const total = 1500;
    const taskId = uniqueTaskId('reconnect');
    // About 3 s of numbered output: long enough to cut the connection twice while it runs.
    const body = `i=1\nwhile [ $i -le ${total} ]; do echo "line $i"; i=$((i+1)); usleep 1500; done`;
    const handle = env.server.submit(demoTask(taskId, body));
    const stdoutCount = (): number => streamLines(handle, 'stdout').length;

    const cutAndWaitForReturn = async (afterLines: number): Promise<number> => {
      await eventually(
        () => stdoutCount() >= afterLines,
        `${afterLines} lines before a cut`,
        15_000,
      );
      const hellos = env.hellos.length;
      const at = stdoutCount();
      env.server.disconnectAll();
      await eventually(() => env.hellos.length > hellos, 'the agent to reconnect', 10_000);
      return at;
    };

    const firstCut = await cutAndWaitForReturn(100);
    const secondCut = await cutAndWaitForReturn(firstCut + 200);
    const result = await withTimeout(handle.result, 30_000, 'the result after the cuts');
    assert.ok(
      secondCut < total,
      `both cuts happened while the step still printed (cut at ${firstCut} and ${secondCut} of ${total} lines)`,
    );
    assert.equal(result.outcome, 'success');
    assertSameLines(streamLines(handle, 'stdout'), numbered(total, 'line '));
    await waitForEvent(handle, (e) => e.kind === 'result', 'the stored result');
  });
});
