/**
 * Signals to the agent process: SIGTERM waits for running steps (grace period), a second SIGTERM
 * cancels them at once; the results still reach the server before the agent exits 0.
 * Needs: a Docker engine; real processes and signals.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  demoTask,
  makeTempDir,
  spawnAgentProcess,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
} from '../support/agent-harness.js';

describe('agent end to end: SIGTERM twice', function () {
  this.timeout(60_000);
  let server: ReferenceServer;
  let dataDir: string;
  before(async () => {
    await ensureDemoImage(DockerClient.connect());
    dataDir = await makeTempDir('signals-server');
    server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    await server.listen();
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('waits for a running step on SIGTERM, and cancels it at once on a second SIGTERM', async () => {
    const agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--grace-seconds',
      '600',
    ]);
    try {
      const handle = server.submit(
        demoTask(uniqueTaskId('sigterm2'), 'echo started\nsleep 60\necho never'),
      );
      await waitForEvent(
        handle,
        (e) => e.kind === 'log' && e.lines.includes('started'),
        'the step to start',
      );
      agent.child.kill('SIGTERM');
      await delay(1500);
      assert.equal(agent.child.exitCode, null, 'the first SIGTERM waits for the step');
      const startedCancel = Date.now();
      agent.child.kill('SIGTERM');
      const result = await withTimeout(handle.result, 20_000, 'the cancelled result');
      assert.equal(result.outcome, 'cancelled');
      assert.ok(Date.now() - startedCancel < 8000, 'cancelled at once, not after the grace period');
      assert.ok(!streamLines(handle, 'stdout').includes('never'));
      const exit = await withTimeout(agent.exited, 15_000, 'the agent to exit');
      assert.equal(exit.code, 0, agent.output());
    } finally {
      await agent.dispose();
    }
  });
});
