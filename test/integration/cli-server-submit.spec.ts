/**
 * `cuttle server` and `cuttle submit --follow` as a person runs them: three real processes (the
 * reference server, an agent, the submit client) and a real container. Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { freePort } from '../support/registry.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  makeTempDir,
  REPO_ROOT,
  spawnAgentProcess,
  withTimeout,
} from '../support/agent-harness.js';

function cli(args: string[]): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'agent', 'cli.ts'), ...args],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

describe('the CLI: cuttle server, cuttle submit --follow, cuttle try', function () {
  this.timeout(90_000);

  it('runs a task file end to end and exits with its outcome', async () => {
    await ensureDemoImage(DockerClient.connect());
    const dir = await makeTempDir('cli');
    const port = await freePort();
    const server = cli([
      'server',
      '--listen',
      `127.0.0.1:${port}`,
      '--token',
      'cli-token',
      '--data',
      join(dir, 'data'),
    ]);
    const agent = await spawnAgentProcess([
      '--server',
      `ws://127.0.0.1:${port}`,
      '--token',
      'cli-token',
    ]);
    try {
      await agent.waitForOutput(/connected to the server/, 20_000);
      // `cuttle submit` of a task file, as a person runs it.
      const submit = async (name: string, task: unknown, ...flags: string[]) => {
        const file = join(dir, name);
        await writeFile(file, JSON.stringify(task));
        return cli([
          'submit',
          file,
          '--server',
          `http://127.0.0.1:${port}`,
          '--token',
          'cli-token',
          ...flags,
        ]);
      };
      const container = { image: 'cuttle-demo:busybox', pullPolicy: 'never' };
      const good = await submit(
        'good.json',
        { script: { syntax: 'sh', body: 'echo from a file' }, container },
        '--follow',
      );
      assert.equal(await withTimeout(good.exited, 60_000, 'submit to exit'), 0, good.output());
      assert.match(good.output(), /\| from a file/);
      assert.match(good.output(), /\[result\] success/);

      const second = await submit(
        'failing.json',
        { script: { syntax: 'sh', body: 'exit 4' }, container },
        '--follow',
      );
      assert.equal(await withTimeout(second.exited, 60_000, 'submit to exit'), 1, second.output());

      const third = await submit('invalid.json', { script: { syntax: 'zsh', body: 'x' } });
      assert.equal(await withTimeout(third.exited, 30_000, 'submit to exit'), 1);
      assert.match(third.output(), /script\.syntax/);
    } finally {
      await agent.dispose();
      server.child.kill('SIGTERM');
      await withTimeout(server.exited, 10_000, 'the server to exit').catch(() =>
        server.child.kill('SIGKILL'),
      );
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cuttle try runs its demo step in a real container and exits 0', async () => {
    const run = cli(['try']);
    assert.equal(await withTimeout(run.exited, 60_000, 'cuttle try to exit'), 0, run.output());
    assert.match(run.output(), /\| Hello from a cuttle step in a real container/);
    assert.match(run.output(), /the secret is: \*{8}/);
    assert.match(run.output(), /\[output variable\] DeployedAt = /);
    assert.match(run.output(), /artifact report\.txt stored by the server at /);
    assert.match(run.output(), /\[result\] success/);
  });
});
