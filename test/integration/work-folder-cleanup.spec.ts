/**
 * A step folder goes whatever the step left in it: also files the container wrote as root when the
 * agent itself is not root (a member of the docker group, as under systemd). And an agent sweeps
 * what a previous run of it left, never another agent's containers.
 * Needs: a Docker engine; root, to create the unprivileged user (skipped otherwise).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  demoTask,
  makeTempDir,
  spawnAgentProcess,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  withTimeout,
} from '../support/agent-harness.js';
import { rm } from 'node:fs/promises';

const USER = 'cuttle-e2e';

/** The uid of an unprivileged user whose primary group is docker (created if missing). */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const gid = Number(
    execFileSync('getent', ['group', 'docker'], { encoding: 'utf8' }).split(':')[2],
  );
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--gid', 'docker', USER]);
  }
  const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

describe('work folder cleanup', function () {
  this.timeout(90_000);
  let server: ReferenceServer;
  let dataDir: string;
  before(async () => {
    await ensureDemoImage(DockerClient.connect());
    dataDir = await makeTempDir('cleanup-server');
    server = new ReferenceServer({ token: TEST_TOKEN, dataDir });
    await server.listen();
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('removes root-owned files when the agent is not root', async function () {
    const user = unprivilegedUser();
    if (user === undefined) this.skip();
    const agent = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN], {
      user,
    });
    try {
      const script = [
        'id -u',
        'mkdir -p deep/er && echo x > deep/er/file && touch .hidden rootfile',
        'chmod 500 deep/er',
      ].join('\n');
      const handle = server.submit(demoTask(uniqueTaskId('rootfiles'), script));
      const result = await withTimeout(handle.result, 60_000, 'the result');
      assert.equal(result.outcome, 'success', agent.output());
      assert.deepEqual(streamLines(handle, 'stdout'), ['0'], 'the step ran as root');
      assert.deepEqual(await readdir(join(agent.home, 'Work')), [], 'the step folder is gone');
      assert.ok(!streamLines(handle, 'system').some((l) => l.includes('cannot remove')));
    } finally {
      await agent.dispose();
    }
  });

  it('sweeps what a previous run left, and never touches another agent', async () => {
    const docker = DockerClient.connect();
    // A first run makes its home and id, then dies.
    const first = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN]);
    await first.waitForOutput(/connected to the server/);
    first.child.kill('SIGKILL');
    await first.exited;
    const agentId = (await readFile(join(first.home, 'agent-id'), 'utf8')).trim();
    // Leftovers: a labelled container of this agent, one of another agent, a step folder.
    const mine = await docker.createStepContainer({
      image: DEMO_IMAGE,
      agentId,
      taskId: 'old-task',
      workFolder: join(first.home, 'Work', 'old'),
      command: ['true'],
    });
    const stranger = await docker.createStepContainer({
      image: DEMO_IMAGE,
      agentId: 'some-other-agent',
      taskId: 'old-task',
      workFolder: join(first.home, 'Work', 'old'),
      command: ['true'],
    });
    await mkdir(join(first.home, 'Work', '20260101000000-old-task-1'), { recursive: true });
    await writeFile(join(first.home, 'Work', '20260101000000-old-task-1', 'left.txt'), 'x');
    try {
      const second = await spawnAgentProcess([
        '--server',
        server.url,
        '--token',
        TEST_TOKEN,
        '--home',
        first.home,
      ]);
      try {
        await second.waitForOutput(/connected to the server/);
        assert.equal(
          await docker.inspectContainer(mine),
          undefined,
          "the agent's leftover container is removed",
        );
        assert.notEqual(
          await docker.inspectContainer(stranger),
          undefined,
          "another agent's container stays",
        );
        assert.deepEqual(await readdir(join(first.home, 'Work')), []);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      await docker.remove(mine);
      await docker.remove(stranger);
      await first.dispose();
    }
  });
});
