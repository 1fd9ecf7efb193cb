/**
 * Packages: fetched from the server only when the cache lacks them, once for concurrent tasks,
 * placed read-only at $PWD/packages/<name>; a blob the server lacks fails the task.
 * Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentMessage } from '../../protocol/index.js';
import { AgentEnv, demoTask, streamLines, uniqueTaskId } from '../support/agent-harness.js';

describe('packages', function () {
  this.timeout(60_000);
  let env: AgentEnv;
  const requests: string[] = [];
  before(async () => {
    env = await AgentEnv.start({ server: { pushWhenFull: true }, agent: { capacity: 2 } });
    env.server.on('agent-message', (message: AgentMessage) => {
      if (message.type === 'blob-request') requests.push(message.sha256);
    });
  });
  after(async () => {
    await env.dispose();
  });
  afterEach(function () {
    env.reportOnFailure(this);
  });

  it('are fetched once for two tasks, placed at $PWD/packages, and read-only to the step', async () => {
    const content = Buffer.from('web package v1.0.3\n'.repeat(10_000));
    const blob = await env.server.addBlob(content);
    const script = [
      'sha256sum packages/web.1.0.3.tgz',
      'if echo tamper >> packages/web.1.0.3.tgz 2>/dev/null; then echo WRITABLE; else echo read-only; fi',
    ].join('\n');
    const package_ = { name: 'web.1.0.3.tgz', sha256: blob.sha256, size: blob.size };
    const [a, b] = await Promise.all([
      env.run({ ...demoTask(uniqueTaskId('pkg-a'), script), packages: [package_] }),
      env.run({ ...demoTask(uniqueTaskId('pkg-b'), script), packages: [package_] }),
    ]);
    const expected = createHash('sha256').update(content).digest('hex');
    for (const { handle, result } of [a, b]) {
      assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
      assert.deepEqual(streamLines(handle, 'stdout'), [
        `${expected}  packages/web.1.0.3.tgz`,
        'read-only',
      ]);
    }
    assert.equal(
      requests.filter((r) => r === blob.sha256).length,
      1,
      'one transfer for both tasks',
    );
    const cached = join(env.agent.home.packagesDir, blob.sha256);
    assert.equal((await stat(cached)).mode & 0o777, 0o444);

    // A third task finds it in the cache: no transfer at all.
    const c = await env.run({ ...demoTask(uniqueTaskId('pkg-c'), script), packages: [package_] });
    assert.equal(c.result.outcome, 'success');
    assert.equal(requests.filter((r) => r === blob.sha256).length, 1);
    assert.ok(!c.handle.events.some((e) => e.kind === 'progress' && e.activity === 'transfer'));
    assert.ok(
      a.handle.events.some((e) => e.kind === 'progress' && e.activity === 'transfer') ||
        b.handle.events.some((e) => e.kind === 'progress' && e.activity === 'transfer'),
    );
  });

  it('fail the task with blob-missing when the server does not have them', async () => {
    const { result } = await env.run({
      ...demoTask(uniqueTaskId('pkg-missing'), 'echo never'),
      packages: [{ name: 'gone.tgz', sha256: 'a'.repeat(64), size: 10 }],
    });
    assert.equal(result.outcome, 'error');
    assert.equal(result.error?.code, 'blob-missing');
    assert.deepEqual(await readdir(env.agent.home.workDir), []);
  });
});
