/**
 * Output that JSON escapes heavily (control characters become six characters each) still fits
 * the protocol's 1 MiB frames and arrives whole. Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { AgentEnv, demoTask, streamLines, uniqueTaskId } from '../support/agent-harness.js';

describe('agent end to end: output that escapes heavily', function () {
  this.timeout(60_000);
  let env: AgentEnv;
  before(async () => {
    env = await AgentEnv.start();
  });
  after(async () => {
    await env.dispose();
  });

  it('delivers 3 MB of control characters in frames under 1 MiB', async () => {
    const { handle, result } = await env.run(
      demoTask(
        uniqueTaskId('escapes'),
        "head -c 3000000 /dev/zero | tr '\\0' '\\001' | fold -w 100",
      ),
    );
    assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
    const lines = streamLines(handle, 'stdout');
    assert.equal(lines.length, 30_000);
    assert.ok(lines.every((line) => line === '\u0001'.repeat(100)));
  });
});
