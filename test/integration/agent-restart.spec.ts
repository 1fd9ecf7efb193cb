/**
 * Fault injection: the agent killed with SIGKILL in the middle of a step and started again on the
 * same home, and the server killed and restarted mid-step. The server must end with every line
 * exactly once, in order, and the result. Needs: a Docker engine; real processes and signals.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ReferenceServer } from '../../protocol/reference-server/index.js';
import { DockerClient, ensureDemoImage } from '../../images/index.js';
import {
  assertSameLines,
  demoTask,
  eventually,
  makeTempDir,
  numbered,
  spawnAgentProcess,
  statesOf,
  streamLines,
  TEST_TOKEN,
  uniqueTaskId,
  withTimeout,
} from '../support/agent-harness.js';

/** Prints `count` numbered lines over about `seconds`, with a helper call and an artifact mark. */
function printingScript(count: number, seconds: number): string {
  const perSleep = Math.max(1, Math.floor(count / (seconds * 10)));
  return [
    'write_verbose "starting"',
    'echo artifact > art.txt',
    'new_octopusartifact art.txt',
    `i=1; while [ $i -le ${count} ]; do echo "line $i"; if [ $((i % ${perSleep})) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done`,
    'echo "to stderr" >&2',
    'set_octopusvariable Done yes',
  ].join('\n');
}

/** A reference server on `dataDir`, listening on `port` when given (a restarted server's). */
async function startServer(dataDir: string, port?: number): Promise<ReferenceServer> {
  const server = new ReferenceServer({
    token: TEST_TOKEN,
    dataDir,
    ...(port === undefined ? {} : { port }),
  });
  await server.listen();
  return server;
}

/** An agent started again on the home of one that ran before. */
function agentOnHome(server: ReferenceServer, home: string): ReturnType<typeof spawnAgentProcess> {
  return spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN, '--home', home]);
}

describe('agent end to end: restarts mid-step', function () {
  this.timeout(180_000);
  let dataDir: string;
  before(async () => {
    await ensureDemoImage(DockerClient.connect());
    dataDir = await makeTempDir('restart-server');
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('loses and repeats no line when the agent is killed with SIGKILL and restarted', async () => {
    const server = await startServer(join(dataDir, 'a'));
    const first = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN]);
    let second: Awaited<ReturnType<typeof spawnAgentProcess>> | undefined;
    try {
      const handle = server.submit(demoTask(uniqueTaskId('sigkill'), printingScript(5000, 5)));
      await eventually(
        () => streamLines(handle, 'stdout').length > 1000,
        'the step to print 1000 lines',
        30_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      await delay(1000); // the step keeps printing while no agent runs
      second = await agentOnHome(server, first.home);
      const result = await withTimeout(handle.result, 60_000, 'the result after the restart');
      assert.equal(result.outcome, 'success', second.output());
      assertSameLines(streamLines(handle, 'stdout'), ['starting', ...numbered(5000, 'line ')]);
      assert.deepEqual(streamLines(handle, 'stderr'), ['to stderr']);
      const verbose = handle.events.find((e) => e.kind === 'log' && e.lines.includes('starting'));
      assert.equal(verbose?.kind === 'log' ? verbose.level : '', 'verbose');
      assert.ok(
        handle.events.some((e) => e.kind === 'artifact' && e.name === 'art.txt'),
        'a mark made before the kill is collected',
      );
      assert.ok(handle.events.some((e) => e.kind === 'variable' && e.name === 'Done'));
      const seqs = handle.events.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
      );
      assert.ok(streamLines(handle, 'system').some((l) => l.includes('took the step over')));
      await eventually(
        async () => (await readdir(join(first.home, 'Work'))).length === 0,
        'the work folder to go',
      );
      await eventually(
        async () => (await readdir(join(first.home, 'Journal'))).length === 0,
        'the journal to go',
      );
    } finally {
      await second?.dispose();
      await first.dispose();
      await server.close();
    }
  });

  it('still masks what the script asked to mask before the agent was killed', async () => {
    const server = await startServer(join(dataDir, 'mask'));
    const first = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN]);
    let second: Awaited<ReturnType<typeof spawnAgentProcess>> | undefined;
    try {
      const script = [
        `echo "##octopus[mask value='$(printf %s s3cr3t-value | base64)']"`,
        `echo "##octopus[setVariable name='$(printf Key | base64)' value='$(printf %s other-s3cr3t | base64)' sensitive='$(printf True | base64)']"`,
        'echo marked',
        'sleep 3',
        'echo "token is s3cr3t-value, key is other-s3cr3t"',
      ].join('\n');
      const handle = server.submit(demoTask(uniqueTaskId('mask-restart'), script));
      await eventually(() => streamLines(handle, 'stdout').includes('marked'), 'the marks', 30_000);
      first.child.kill('SIGKILL');
      await first.exited;
      second = await agentOnHome(server, first.home);
      const result = await withTimeout(handle.result, 60_000, 'the result after the restart');
      assert.equal(result.outcome, 'success', second.output());
      assert.deepEqual(streamLines(handle, 'stdout'), [
        'marked',
        'token is ********, key is ********',
      ]);
      await eventually(
        async () => (await readdir(join(first.home, 'Journal'))).length === 0,
        'the journal, with the masked values, to go',
      );
    } finally {
      await second?.dispose();
      await first.dispose();
      await server.close();
    }
  });

  it('delivers output made while the server was away, after the step folder went and a SIGKILL', async () => {
    // Nothing reaches the server while the step runs: every line is delivered from the journal,
    // after the step's folder was removed and the agent was killed.
    const serverData = join(dataDir, 'c');
    let server = await startServer(serverData);
    const port = Number(new URL(server.url).port);
    const first = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN]);
    let second: Awaited<ReturnType<typeof spawnAgentProcess>> | undefined;
    const secret = 'away-s3cret-5521';
    const taskId = uniqueTaskId('away');
    try {
      const handle = server.submit(
        demoTask(
          taskId,
          [
            'sleep 1',
            's=$(get_octopusvariable Secret)',
            'i=1; while [ $i -le 20000 ]; do echo "line $i"; i=$((i+1)); done',
            'echo "the secret is $s"',
          ].join('\n'),
          { variables: [{ name: 'Secret', value: secret, sensitive: true }] },
        ),
      );
      await eventually(() => statesOf(handle).includes('running'), 'the step to run', 30_000);
      await server.close();
      const journal = join(first.home, 'Journal', taskId, 'events.ndjson');
      await eventually(
        async () => (await readFile(journal, 'utf8')).includes('"kind":"result"'),
        'the result in the journal',
        30_000,
      );
      assert.deepEqual(await readdir(join(first.home, 'Work')), [], 'the step folder is gone');
      first.child.kill('SIGKILL');
      await first.exited;
      const journalled = await readFile(journal, 'utf8');
      assert.ok(journalled.includes('"line 20000"'), 'the lines are in the journal');
      assert.ok(!journalled.includes(secret), 'masked in the journal too');

      server = await startServer(serverData, port);
      second = await agentOnHome(server, first.home);
      const restored = server.task(taskId);
      assert.ok(restored !== undefined, 'the restarted server knows the task from its data folder');
      const result = await withTimeout(restored.result, 60_000, 'the result after the restarts');
      assert.equal(result.outcome, 'success', second.output());
      assertSameLines(streamLines(restored, 'stdout'), [
        ...numbered(20000, 'line '),
        'the secret is ********',
      ]);
    } finally {
      await second?.dispose();
      await first.dispose();
      await server.close();
    }
  });

  it('loses and repeats no line when the server is killed and restarted three times', async () => {
    const serverData = join(dataDir, 'b');
    let server = await startServer(serverData);
    const port = Number(new URL(server.url).port);
    const agent = await spawnAgentProcess(['--server', server.url, '--token', TEST_TOKEN]);
    const taskId = uniqueTaskId('server-restart');
    try {
      server.submit(demoTask(taskId, printingScript(5000, 6)));
      for (let restart = 1; restart <= 3; restart++) {
        const current = server;
        await eventually(
          () => (current.task(taskId)?.events.length ?? 0) > restart * 20,
          `events before restart ${restart}`,
          30_000,
        );
        await server.close();
        await delay(300);
        server = await startServer(serverData, port);
      }
      const handle = server.task(taskId);
      assert.ok(handle !== undefined, 'the restarted server knows the task from its data folder');
      const result = await withTimeout(handle.result, 90_000, 'the result');
      assert.equal(result.outcome, 'success', agent.output());
      assertSameLines(streamLines(handle, 'stdout'), ['starting', ...numbered(5000, 'line ')]);
    } finally {
      await agent.dispose();
      await server.close();
    }
  });
});
