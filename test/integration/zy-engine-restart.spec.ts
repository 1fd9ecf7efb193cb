/**
 * The Docker engine stopped under a running step and started again: the step ends with
 * docker-unavailable (not a crash, not a hang), tasks meanwhile fail the same way, and the agent
 * recovers by itself once the engine is back; nothing is left on the engine.
 *
 * Needs: root and a `dockerd` started by hand or by scripts/setup.sh (not by systemd), which this
 * test stops and starts again. It runs near the end of the suite (files run in name order) so the
 * restart disturbs no other test.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { rm } from 'node:fs/promises';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../../images/index.js';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { AgentHome } from '../../workspace/index.js';
import {
  AgentEnv,
  demoTask,
  eventually,
  makeTempDir,
  spawnAgentProcess,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
} from '../support/agent-harness.js';

function dockerdPid(): number | undefined {
  try {
    return Number(execFileSync('pgrep', ['-x', 'dockerd'], { encoding: 'utf8' }).split('\n')[0]);
  } catch {
    return undefined;
  }
}

async function engineUp(docker: DockerClient): Promise<boolean> {
  return docker.engineInfo().then(
    () => true,
    () => false,
  );
}

async function waitEngine(docker: DockerClient, up: boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await engineUp(docker)) !== up) {
    if (Date.now() > deadline)
      throw new Error(`the engine did not go ${up ? 'up' : 'down'} in ${timeoutMs} ms`);
    await delay(200);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startDockerd(args: string[] = []): void {
  const log = openSync('/var/log/cuttle-dockerd.log', 'a');
  spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] }).unref();
}

describe('agent end to end: the engine stopped and started again', function () {
  this.timeout(180_000);
  const docker = DockerClient.connect();
  let stopping: number | undefined;

  before(function () {
    const systemdManaged = (() => {
      try {
        execFileSync('systemctl', ['is-active', '--quiet', 'docker'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    })();
    if (process.getuid?.() !== 0 || dockerdPid() === undefined || systemdManaged) this.skip();
  });

  /** Stops the engine and waits for its process to be gone (up to 30 s). */
  async function stopDockerd(): Promise<void> {
    stopping = dockerdPid();
    process.kill(stopping ?? 0, 'SIGTERM');
    for (let i = 0; i < 150 && stopping !== undefined && isAlive(stopping); i++) await delay(200);
  }

  after(async () => {
    // Whatever happened, leave an engine running for what follows (once a stopping one is gone).
    for (let i = 0; i < 100 && stopping !== undefined && isAlive(stopping); i++) await delay(200);
    if (!(await engineUp(docker))) {
      startDockerd();
      await waitEngine(docker, true, 60_000);
    }
  });

  it('fails the step with docker-unavailable, and recovers when the engine returns', async () => {
    const env = await AgentEnv.start();
    try {
      const handle = env.server.submit(
        demoTask(uniqueTaskId('engine-gone'), 'echo started\nsleep 60'),
      );
      await waitForEvent(
        handle,
        (e) => e.kind === 'log' && e.lines.includes('started'),
        'the step to start',
      );
      stopping = dockerdPid();
      process.kill(stopping ?? 0, 'SIGTERM');
      const result = await withTimeout(handle.result, 60_000, 'the result once the engine is gone');
      assert.equal(result.outcome, 'error', JSON.stringify(result));
      assert.equal(result.error?.code, 'docker-unavailable');
      assert.match(result.error?.message ?? '', /engine went away/);
      assert.ok(!streamLines(handle, 'stdout').includes('never'));
      await waitEngine(docker, false, 30_000);
      for (let i = 0; i < 150 && stopping !== undefined && isAlive(stopping); i++) await delay(200);

      const meanwhile = await env.run(demoTask(uniqueTaskId('engine-down'), 'echo never'));
      assert.equal(meanwhile.result.error?.code, 'docker-unavailable');
      assert.deepEqual(streamLines(meanwhile.handle, 'stdout'), []);

      startDockerd();
      await waitEngine(docker, true, 60_000);
      const after = await env.run(demoTask(uniqueTaskId('engine-back'), 'echo back'));
      assert.equal(after.result.outcome, 'success', JSON.stringify(after.result));
      assert.deepEqual(streamLines(after.handle, 'stdout'), ['back']);
      // The container the engine could not remove while away goes once the agent sees it again.
      const deadline = Date.now() + 20_000;
      while ((await env.containers()).length > 0 && Date.now() < deadline) await delay(250);
      assert.deepEqual(await env.containers(), []);
    } finally {
      await env.dispose();
    }
  });

  it('removes what a previous run left once the engine is back, when it was away at the start', async () => {
    await ensureDemoImage(docker);
    const home = await AgentHome.open(await makeTempDir('early-home'));
    const dataDir = await makeTempDir('early-server');
    // A container of a task no journal knows, as a run killed before its cleanup leaves it.
    const left = await docker.createStepContainer({
      image: DEMO_IMAGE,
      agentId: home.agentId,
      taskId: 'left-by-a-previous-run',
      workFolder: home.workDir,
      command: ['true'],
      extraBinds: [],
      env: [],
    });
    await stopDockerd();
    const server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    await server.listen();
    // `--home` given again: the last one counts.
    const agent = await spawnAgentProcess([
      '--server',
      server.url,
      '--token',
      TEST_TOKEN,
      '--home',
      home.root,
    ]);
    try {
      await eventually(() => server.connectedAgents().length === 1, 'the agent to connect', 20_000);
      startDockerd();
      await waitEngine(docker, true, 60_000);
      await eventually(
        async () => (await docker.inspectContainer(left)) === undefined,
        'the container left by the previous run to be removed',
        30_000,
      );
    } catch (error) {
      console.error(agent.output());
      throw error;
    } finally {
      await agent.dispose();
      await server.close();
      await docker.remove(left);
      await rm(dataDir, { recursive: true, force: true });
      await rm(home.root, { recursive: true, force: true });
    }
  });

  it('follows a step again after an engine restart with live-restore', async () => {
    const restart = async (args: string[]): Promise<void> => {
      await stopDockerd();
      startDockerd(args);
      await waitEngine(docker, true, 60_000);
    };
    await restart(['--live-restore']);
    const env = await AgentEnv.start();
    try {
      const handle = env.server.submit(
        demoTask(uniqueTaskId('live-restore'), 'echo started\nsleep 6\necho finished'),
      );
      await waitForEvent(
        handle,
        (e) => e.kind === 'log' && e.lines.includes('started'),
        'the step to start',
      );
      await restart(['--live-restore']);
      const result = await withTimeout(
        handle.result,
        60_000,
        'the result after the engine restart',
      );
      assert.equal(result.outcome, 'success', JSON.stringify(result));
      assert.deepEqual(streamLines(handle, 'stdout'), ['started', 'finished']);
    } catch (error) {
      console.error(env.log.lines().slice(-30).join('\n'));
      throw error;
    } finally {
      await env.dispose();
      await restart([]);
    }
  });
});
