/**
 * Artifacts: only regular files inside folders mounted from the worker are collected; anything
 * else is a warning that leaves the outcome alone. A large artifact streams without the agent's
 * memory growing with it. Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import {
  AgentEnv,
  demoTask,
  spawnAgentProcess,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  withTimeout,
} from '../support/agent-harness.js';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { makeTempDir } from '../support/agent-harness.js';
import { rm } from 'node:fs/promises';

describe('artifacts', function () {
  this.timeout(180_000);
  let env: AgentEnv;
  before(async () => {
    env = await AgentEnv.start();
  });
  after(async () => {
    await env.dispose();
  });
  afterEach(function () {
    env.reportOnFailure(this);
  });

  it('refuses paths outside the mounted folders, links pointing out, and missing files', async () => {
    const script = [
      'echo ok > good.txt',
      'mkdir sub && echo nested > sub/inner.txt',
      'ln -s /etc/passwd passwd-link',
      'ln -s sub/inner.txt inner-link',
      'new_octopusartifact /etc/passwd',
      'new_octopusartifact "$PWD/../escape.txt"',
      'new_octopusartifact "$PWD/passwd-link"',
      'new_octopusartifact "$PWD/missing.txt"',
      'new_octopusartifact "$PWD/sub"',
      'new_octopusartifact "$PWD/inner-link"',
      'new_octopusartifact good.txt',
    ].join('\n');
    const { handle, result } = await env.run(demoTask(uniqueTaskId('refuse'), script));
    assert.equal(result.outcome, 'success', 'a refused artifact does not change the outcome');
    const artifacts = handle.events.flatMap((e) => (e.kind === 'artifact' ? [e.name] : []));
    assert.deepEqual(artifacts, ['inner-link', 'good.txt']);
    const warnings = streamLines(handle, 'system').filter((l) => l.includes('was not collected'));
    assert.equal(warnings.length, 5, warnings.join('\n'));
    assert.ok(
      warnings.some((w) => w.includes('/etc/passwd') && w.includes('not inside a folder mounted')),
    );
    assert.ok(warnings.some((w) => w.includes('missing.txt') && w.includes('does not exist')));
    assert.ok(warnings.some((w) => w.includes('sub') && w.includes('not a regular file')));
  });

  it('refuses a file over the configured size limit', async () => {
    const limited = await AgentEnv.start({ agent: { maxArtifactBytes: 1000 } });
    try {
      const { handle, result } = await limited.run(
        demoTask(
          uniqueTaskId('limit'),
          'head -c 5000 /dev/zero > big.bin\nnew_octopusartifact big.bin',
        ),
      );
      assert.equal(result.outcome, 'success');
      assert.ok(!handle.events.some((e) => e.kind === 'artifact'));
      assert.ok(streamLines(handle, 'system').some((l) => l.includes('maxArtifactBytes')));
    } finally {
      await limited.dispose();
    }
  });

  it('streams a 1 GiB artifact without the agent holding it in memory', async () => {
    const dataDir = await makeTempDir('big-server');
    const server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    await server.listen();
    const agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--capacity',
      '1',
    ]);
    try {
      const handle = server.submit(
        demoTask(
          uniqueTaskId('big'),
          'head -c 1073741824 /dev/urandom > big.bin\nsha256sum big.bin\nnew_octopusartifact big.bin',
        ),
      );
      let peakKiB = 0;
      const sampling = (async () => {
        for (;;) {
          const status = await readFile(`/proc/${agent.child.pid ?? 0}/status`, 'utf8').catch(
            () => '',
          );
          const rss = /VmRSS:\s+(\d+)/.exec(status)?.[1];
          if (rss === undefined) return;
          peakKiB = Math.max(peakKiB, Number(rss));
          await delay(100);
        }
      })();
      const result = await withTimeout(handle.result, 150_000, 'the 1 GiB artifact task');
      assert.equal(result.outcome, 'success');
      const artifact = handle.events.find((e) => e.kind === 'artifact');
      assert.ok(artifact?.kind === 'artifact');
      assert.equal(artifact.size, 1073741824);
      const printed = streamLines(handle, 'stdout')[0]?.split(' ')[0];
      assert.equal(artifact.sha256, printed, 'the server has the SHA-256 the container computed');
      await agent.dispose();
      await sampling;
      console.log(
        `      agent peak resident memory during a 1 GiB artifact: ${Math.round(peakKiB / 1024)} MiB`,
      );
      assert.ok(peakKiB < 250 * 1024, `the agent peaked at ${peakKiB} KiB`);
    } finally {
      await agent.dispose();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
