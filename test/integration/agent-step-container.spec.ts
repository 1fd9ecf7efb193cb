/**
 * The agent end to end, step containers: the temp folder, labels and cleanup, images that define
 * an ENTRYPOINT, missing images, and inline Dockerfiles (PROTOCOL.md sections 3 and 5).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEMO_IMAGE } from '../../images/index.js';
import {
  AgentEnv,
  demoTask,
  eventually,
  statesOf,
  streamLines,
  uniqueTaskId,
  waitForEvent,
  withTimeout,
} from '../support/agent-harness.js';
import { buildTestImage } from '../support/docker.js';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('agent end to end: step containers', function () {
  this.timeout(60_000);
  let env: AgentEnv;
  const imagesToRemove: string[] = [];

  before(async () => {
    env = await AgentEnv.start();
  });

  after(async () => {
    await env?.dispose();
    for (const image of imagesToRemove) await env?.docker.removeImage(image).catch(() => undefined);
  });

  afterEach(function () {
    env?.reportOnFailure(this);
  });

  describe('temp folder', () => {
    it('runs the script in <home>/Work/<yyyyMMddHHmmss>-<taskId>-<n>, shared with the host, removed after the result', async () => {
      const taskId = `T.${randomUUID().slice(0, 8)}`;
      const sanitized = taskId.replace('.', '_');
      // The step writes a file, then waits (bounded) for the test to answer through the same
      // folder: the test sees the step's file on the host, and the step sees the test's file.
      const body = [
        'pwd',
        'echo written-by-the-step > from-step.txt',
        'n=0',
        'while [ ! -e from-test.txt ] && [ $n -lt 200 ]; do usleep 50000; n=$((n+1)); done',
        'cat from-test.txt',
      ].join('\n');
      const before = Date.now();
      const handle = env.server.submit(demoTask(taskId, body));
      const pwdEvent = await waitForEvent(
        handle,
        (e) => e.kind === 'log' && e.stream === 'stdout',
        'the pwd line',
      );
      const pwd = pwdEvent.kind === 'log' ? (pwdEvent.lines[0] ?? '') : '';

      const workDir = env.agent.home.workDir;
      assert.equal(join(pwd, '..'), workDir, `the step's $PWD ${pwd} is directly under ${workDir}`);
      const name = pwd.slice(workDir.length + 1);
      const match = /^(\d{14})-(.+)-(\d+)$/.exec(name);
      assert.ok(match, `the folder name ${name} is <yyyyMMddHHmmss>-<taskId>-<n>`);
      assert.equal(match[2], sanitized, `"." in the taskId is replaced by "_" in ${name}`);
      const stamp = match[1] ?? '';
      const utc = Date.UTC(
        Number(stamp.slice(0, 4)),
        Number(stamp.slice(4, 6)) - 1,
        Number(stamp.slice(6, 8)),
        Number(stamp.slice(8, 10)),
        Number(stamp.slice(10, 12)),
        Number(stamp.slice(12, 14)),
      );
      assert.ok(
        utc >= Math.floor(before / 1000) * 1000 - 1000 && utc <= Date.now() + 1000,
        `the folder's timestamp ${stamp} is the UTC time the step started`,
      );

      // While the step runs: its file is on the host at the same path, and its container is
      // labelled with the agent and the task.
      await eventually(() => exists(join(pwd, 'from-step.txt')), 'the step to write its file');
      assert.equal(await readFile(join(pwd, 'from-step.txt'), 'utf8'), 'written-by-the-step\n');
      assert.equal((await env.containers(taskId)).length, 1, 'one container with both labels');
      await writeFile(join(pwd, 'from-test.txt'), 'written-by-the-test\n');

      const result = await withTimeout(handle.result, 20_000, 'the result');
      assert.equal(result.outcome, 'success');
      assert.deepEqual(streamLines(handle, 'stdout'), [pwd, 'written-by-the-test']);
      assert.equal(await exists(pwd), false, `the temp folder ${pwd} is removed after the result`);
      assert.deepEqual(await readdir(workDir), [], `nothing is left in ${workDir}`);
      assert.deepEqual(await env.containers(), [], 'no container with the agent label is left');
    });
  });

  describe('images', () => {
    it('runs a step in an image whose ENTRYPOINT is /bin/false and that has a CMD', async () => {
      const tag = `cuttle-test-entrypoint:${randomUUID().slice(0, 8)}`;
      imagesToRemove.push(tag);
      await buildTestImage(env.docker, {
        tag,
        dockerfileExtra: 'ENTRYPOINT ["/bin/false"]\nCMD ["--should-not-run"]',
      });
      const { handle, result } = await env.run({
        ...demoTask(uniqueTaskId('entrypoint'), 'echo the step ran'),
        container: { image: tag, pullPolicy: 'never' },
      });
      assert.equal(result.outcome, 'success');
      assert.equal(result.exitCode, 0);
      assert.deepEqual(streamLines(handle, 'stdout'), ['the step ran']);
    });

    // PROTOCOL.md section 5: "the agent logs a `system` warning that it ignored them".
    // (It failed while agent/task-run.ts logged that line at level `verbose`.)
    it('logs a system warning that it ignored the ENTRYPOINT and CMD', async () => {
      const tag = `cuttle-test-entrypoint:${randomUUID().slice(0, 8)}`;
      imagesToRemove.push(tag);
      await buildTestImage(env.docker, {
        tag,
        dockerfileExtra: 'ENTRYPOINT ["/bin/false"]\nCMD ["--should-not-run"]',
      });
      const { handle, result } = await env.run({
        ...demoTask(uniqueTaskId('entrypoint-warn'), 'true'),
        container: { image: tag, pullPolicy: 'never' },
      });
      assert.equal(result.outcome, 'success');
      const notes = handle.events.filter(
        (e) => e.kind === 'log' && e.stream === 'system' && /ENTRYPOINT/.test(e.lines.join('\n')),
      );
      assert.equal(notes.length, 1, 'one system line names the ignored ENTRYPOINT');
      const note = notes[0];
      assert.equal(note?.kind === 'log' ? note.level : undefined, 'warning', 'it is a warning');
    });

    it('ends a task whose image is missing, with pull policy never, with error image-not-found', async () => {
      const image = `cuttle-test-missing:${randomUUID().slice(0, 8)}`;
      const { handle, result } = await env.run({
        ...demoTask(uniqueTaskId('missing'), 'echo must not run'),
        container: { image, pullPolicy: 'never' },
      });
      assert.equal(result.outcome, 'error');
      assert.equal(result.exitCode, null);
      assert.equal(result.error?.code, 'image-not-found');
      assert.match(result.error?.message ?? '', new RegExp(image.replace('.', '\\.')));
      assert.ok(
        streamLines(handle, 'system').some((line) => line.includes(image)),
        'a system line explains the failure',
      );
      assert.deepEqual(streamLines(handle, 'stdout'), []);
      assert.equal(statesOf(handle).includes('running'), false, 'the step never ran');
    });

    it('builds an inline Dockerfile once and reuses the image for the same Dockerfile', async () => {
      const marker = `built-${randomUUID()}`;
      const dockerfile = `FROM ${DEMO_IMAGE}\nRUN echo ${marker} > /built.txt\n`;
      const first = await env.run(
        { ...demoTask(uniqueTaskId('build-1'), 'cat /built.txt'), container: { dockerfile } },
        60_000,
      );
      for (const line of streamLines(first.handle, 'system')) {
        const tag = /cuttle-build:[0-9a-f]+/.exec(line)?.[0];
        if (tag !== undefined && !imagesToRemove.includes(tag)) imagesToRemove.push(tag);
      }
      assert.equal(first.result.outcome, 'success');
      assert.deepEqual(streamLines(first.handle, 'stdout'), [marker]);
      assert.ok(statesOf(first.handle).includes('building'), 'the first task builds the image');

      const second = await env.run({
        ...demoTask(uniqueTaskId('build-2'), 'cat /built.txt'),
        container: { dockerfile },
      });
      assert.equal(second.result.outcome, 'success');
      assert.deepEqual(streamLines(second.handle, 'stdout'), [marker]);
      assert.deepEqual(
        statesOf(second.handle).filter((s) => s === 'building'),
        [],
        'the second task with the same Dockerfile does not build again',
      );
    });
  });
});
