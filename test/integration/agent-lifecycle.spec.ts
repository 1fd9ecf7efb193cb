/**
 * The agent end to end as a real process: it stops cleanly on SIGTERM, and an agent started with
 * --exit-when-drained exits 0 once the server drained it (PROTOCOL.md section 8).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import type { AgentMessage } from '../../protocol/index.js';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import {
  demoTask,
  eventually,
  makeTempDir,
  spawnAgentProcess,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
  type AgentProcess,
} from '../support/agent-harness.js';

/** "Within a few seconds". */
const EXIT_WITHIN_MS = 5000;

describe('agent end to end: process lifecycle', function () {
  this.timeout(60_000);
  let dataDir: string;
  let server: ReferenceServer;
  let agent: AgentProcess | undefined;
  let fromAgent: AgentMessage[];
  const record = (message: AgentMessage): void => {
    fromAgent.push(message);
  };

  beforeEach(async () => {
    fromAgent = [];
    dataDir = await makeTempDir('server');
    server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    server.on('agent-message', record);
    await server.listen();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && agent !== undefined) {
      console.error(`--- agent process output ---\n${agent.output()}\n---`);
    }
    await agent?.dispose();
    agent = undefined;
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function startAgent(...extra: string[]): Promise<AgentProcess> {
    agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--grace-seconds',
      '5',
      ...extra,
    ]);
    await eventually(
      () => server.connectedAgents().length === 1,
      'the agent process to connect',
      20_000,
    );
    return agent;
  }

  it('exits 0 within a few seconds of SIGTERM while idle', async () => {
    const proc = await startAgent();
    const signalledAt = Date.now();
    assert.ok(proc.child.kill('SIGTERM'));
    const exit = await withTimeout(proc.exited, 15_000, 'the agent process to exit');
    const tookMs = Date.now() - signalledAt;
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; output:\n${proc.output()}`);
    assert.ok(tookMs < EXIT_WITHIN_MS, `exited ${tookMs} ms after SIGTERM`);
  });

  it('answers every drain, also one repeated after the first drained', async () => {
    await startAgent();
    await withTimeout(server.drain(), 10_000, 'drained');
    await withTimeout(server.drain(), 10_000, 'drained again');
    assert.equal(fromAgent.filter((m) => m.type === 'drained').length, 2);
  });

  it('with --exit-when-drained: answers drain with drained and exits 0', async () => {
    const proc = await startAgent('--exit-when-drained');
    await withTimeout(server.drain(), 10_000, 'drained');
    assert.equal(fromAgent.filter((m) => m.type === 'drained').length, 1);
    const exit = await withTimeout(proc.exited, EXIT_WITHIN_MS, 'the agent process to exit');
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; output:\n${proc.output()}`);
  });

  it('with --exit-when-drained: finishes the running step before drained, then exits 0', async () => {
    const proc = await startAgent('--exit-when-drained');
    const handle = server.submit(demoTask(uniqueTaskId('drain'), 'sleep 1\necho finished'));
    await waitForEvent(handle, (e) => e.kind === 'state' && e.state === 'running', 'running');
    await withTimeout(server.drain(), 20_000, 'drained');
    const result = await withTimeout(handle.result, 1000, 'the result, stored before drained');
    assert.equal(result.outcome, 'success');
    assert.deepEqual(streamLines(handle, 'stdout'), ['finished']);
    const resultAt = fromAgent.findIndex((m) => m.type === 'event' && m.kind === 'result');
    const drainedAt = fromAgent.findIndex((m) => m.type === 'drained');
    assert.ok(resultAt >= 0 && drainedAt > resultAt, 'drained comes after the result');
    const exit = await withTimeout(proc.exited, EXIT_WITHIN_MS, 'the agent process to exit');
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; output:\n${proc.output()}`);
  });
});
