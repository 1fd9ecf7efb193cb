/**
 * Secrets never leak: not in a log event, not in `docker inspect` of the running step container,
 * not in the agent's own log, not on disk under <home> once the step is over.
 * Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import {
  AgentEnv,
  demoTask,
  eventually,
  uniqueTaskId,
  waitForEvent,
} from '../support/agent-harness.js';

const SECRET = 'pa55-w0rd-Zq9';
const MULTI_LINE_SECRET = 'first-secret-line\nsecond-secret-line';
const OUTPUT_SECRET = 'out-secret-7731';
const MASKED_VALUE = 'mask-me-4410';

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

describe('secrets', function () {
  this.timeout(60_000);
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

  it('never appear in log events, docker inspect, the agent log or the home folder', async () => {
    const taskId = uniqueTaskId('secrets');
    const script = [
      'echo "plain: $(get_octopusvariable Db.Password)"',
      'echo "twice: $(get_octopusvariable Db.Password) and $(get_octopusvariable Db.Password)"',
      'echo "multi: $(get_octopusvariable Cert)"',
      // The secret arrives in two reads of the output file.
      `printf 'split: pa55-'; sleep 0.3; printf 'w0rd-Zq9\\n'`,
      'echo "to stderr $(get_octopusvariable Db.Password)" >&2',
      `set_octopusvariable Out "${OUTPUT_SECRET}" -sensitive`,
      `echo "output secret: ${OUTPUT_SECRET}"`,
      `echo "##octopus[mask value='$(printf ${MASKED_VALUE} | base64)']"`,
      `echo "masked by message: ${MASKED_VALUE}"`,
      'echo ready-for-inspect',
      'sleep 2',
    ].join('\n');
    const handle = env.server.submit({
      ...demoTask(taskId, script),
      variables: [
        { name: 'Db.Password', value: SECRET, sensitive: true },
        { name: 'Cert', value: MULTI_LINE_SECRET, sensitive: true },
      ],
    });
    await waitForEvent(
      handle,
      (e) => e.kind === 'log' && e.lines.includes('ready-for-inspect'),
      'the step to print ready-for-inspect',
    );
    const [containerId] = await env.containers(taskId);
    assert.ok(containerId !== undefined, 'the step container runs');
    const inspect = JSON.stringify(await new Docker().getContainer(containerId).inspect());
    for (const secret of [SECRET, 'first-secret-line', 'second-secret-line', OUTPUT_SECRET]) {
      assert.ok(!inspect.includes(secret), `docker inspect shows ${secret}`);
    }
    const result = await handle.result;
    assert.equal(result.outcome, 'success');

    const logs = handle.events.filter((e) => e.kind === 'log');
    const text = JSON.stringify(logs);
    for (const secret of [
      SECRET,
      'first-secret-line',
      'second-secret-line',
      OUTPUT_SECRET,
      MASKED_VALUE,
    ]) {
      assert.ok(!text.includes(secret), `a log event shows ${secret}`);
    }
    const lines = logs.flatMap((e) => (e.kind === 'log' ? e.lines : []));
    for (const expected of [
      'plain: ********',
      'twice: ******** and ********',
      'multi: ********',
      '********',
      'split: ********',
      'to stderr ********',
      'output secret: ********',
      'masked by message: ********',
    ]) {
      assert.ok(
        lines.includes(expected),
        `missing ${JSON.stringify(expected)} in ${JSON.stringify(lines)}`,
      );
    }
    // The sensitive output variable reaches the server, marked as such.
    const variable = handle.events.find((e) => e.kind === 'variable');
    assert.ok(
      variable?.kind === 'variable' && variable.sensitive && variable.value === OUTPUT_SECRET,
    );

    const agentLog = env.log.lines().join('\n');
    for (const secret of [SECRET, 'first-secret-line', OUTPUT_SECRET]) {
      assert.ok(!agentLog.includes(secret), `the agent's log shows ${secret}`);
    }
    // Once the result is acknowledged, nothing under <home> holds a secret.
    await eventually(
      async () => (await readdir(env.agent.home.journalDir)).length === 0,
      'the journal of the finished task to be deleted',
    );
    for (const file of await filesUnder(env.agent.home.root)) {
      if ((await stat(file)).size > 50_000_000) continue;
      const content = await readFile(file, 'utf8');
      for (const secret of [SECRET, 'first-secret-line', OUTPUT_SECRET]) {
        assert.ok(!content.includes(secret), `${file} holds ${secret}`);
      }
    }
    assert.deepEqual(await readdir(env.agent.home.workDir), []);
  });

  it('mask feed credentials in the log', async () => {
    const { handle, result } = await env.run({
      ...demoTask(uniqueTaskId('feed'), 'echo "feed password is feed-pass-991"'),
      container: {
        image: 'cuttle-demo:busybox',
        pullPolicy: 'never',
        feed: { registry: '127.0.0.1:1', username: 'u', password: 'feed-pass-991' },
      },
    });
    assert.equal(result.outcome, 'success');
    assert.ok(!JSON.stringify(handle.events).includes('feed-pass-991'));
  });
});
