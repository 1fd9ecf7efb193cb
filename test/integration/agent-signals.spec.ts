/**
 * Signals to the agent process: SIGTERM waits for running steps (grace period), a second SIGTERM
 * cancels them at once; the results still reach the server before the agent exits 0.
 * Needs: a Docker engine; real processes and signals.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  demoTask,
  makeTempDir,
  runTask,
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

  it('reloads the safe settings of its configuration file on SIGHUP', async () => {
    const configFile = join(dataDir, 'agent.json');
    await writeFile(
      configFile,
      JSON.stringify({ server: server.url, token: TEST_TOKEN, capacity: 1 }),
    );
    const agent = await spawnAgentProcess(['--config', configFile]);
    try {
      await agent.waitForOutput(/connected to the server/);
      await writeFile(
        configFile,
        JSON.stringify({
          server: 'ws://127.0.0.1:1',
          token: TEST_TOKEN,
          capacity: 3,
          logLevel: 'debug',
        }),
      );
      agent.child.kill('SIGHUP');
      const output = await agent.waitForOutput(/configuration reloaded/);
      const line = output.split('\n').find((l) => l.includes('configuration reloaded')) ?? '';
      assert.match(line, /applied=\["capacity","logLevel"\]/);
      assert.match(line, /needsRestart=\["server"\]/);
      assert.equal(agent.child.exitCode, null, 'still running');
      // Still connected to the first server: the server setting waits for a restart.
      const { result } = await runTask(server, demoTask(uniqueTaskId('after-hup'), 'echo ok'));
      assert.equal(result.outcome, 'success');
    } finally {
      await agent.dispose();
    }
  });
});
