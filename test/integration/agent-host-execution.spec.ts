/**
 * The agent end to end, tasks without a container: refused unless the agent's configuration
 * allows host execution, run on the worker host when it does (PROTOCOL.md section 3).
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { SubmitInput } from '../../protocol/reference-server/index.js';
import { AgentEnv, statesOf, streamLines, uniqueTaskId } from '../support/agent-harness.js';

function hostTask(taskId: string, body: string): SubmitInput {
  return { taskId, name: `e2e ${taskId}`, script: { syntax: 'sh', body } };
}

describe('agent end to end: host execution', function () {
  this.timeout(60_000);

  describe('not allowed (allowHostExecution: false)', () => {
    let env: AgentEnv;

    before(async () => {
      env = await AgentEnv.start({ agent: { allowHostExecution: false } });
    });

    after(async () => {
      await env?.dispose();
    });

    afterEach(function () {
      env?.reportOnFailure(this);
    });

    it('ends a task without a container with error host-execution-forbidden', async () => {
      const { handle, result } = await env.run(
        hostTask(uniqueTaskId('no-host'), 'echo must not run'),
      );
      assert.equal(result.outcome, 'error');
      assert.equal(result.exitCode, null);
      assert.equal(result.error?.code, 'host-execution-forbidden');
      assert.ok(
        streamLines(handle, 'system').some((line) => /host ?execution/i.test(line)),
        'a system line says how to allow it',
      );
      assert.deepEqual(streamLines(handle, 'stdout'), []);
      assert.equal(statesOf(handle).includes('running'), false);
    });
  });

  describe('allowed (allowHostExecution: true)', () => {
    let env: AgentEnv;

    before(async () => {
      env = await AgentEnv.start({ agent: { allowHostExecution: true } });
    });

    after(async () => {
      await env?.dispose();
    });

    afterEach(function () {
      env?.reportOnFailure(this);
    });

    it('runs the step on the worker host, in a temp folder under <home>/Work', async () => {
      const taskId = uniqueTaskId('on-host');
      const { handle, result } = await env.run(
        hostTask(taskId, 'uname -n\npwd\necho oops >&2\nexit 4'),
      );
      assert.equal(result.outcome, 'failure');
      assert.equal(result.exitCode, 4);
      const [node, pwd] = streamLines(handle, 'stdout');
      assert.equal(node, hostname(), 'the step ran on this host, not in a container');
      assert.equal(dirname(pwd ?? ''), env.agent.home.workDir);
      assert.deepEqual(streamLines(handle, 'stderr'), ['oops']);
      assert.deepEqual(await env.containers(taskId), [], 'no container was made');
    });
  });

  describe('with the helpers, masking, artifacts and packages', () => {
    let env: AgentEnv;
    before(async () => {
      env = await AgentEnv.start();
    });
    after(async () => {
      await env?.dispose();
    });

    it('works on the host as it does in a container', async () => {
      const blob = await env.server.addBlob(Buffer.from('package on the host\n'));
      const script = [
        'echo "secret: $(get_octopusvariable Password)"',
        'set_octopusvariable Where host',
        'cat packages/p.txt',
        'echo report > report.txt',
        'new_octopusartifact report.txt',
      ].join('\n');
      const { handle, result } = await env.run({
        ...hostTask(uniqueTaskId('host-helpers'), script),
        script: { syntax: 'bash', body: script },
        variables: [{ name: 'Password', value: 'host-secret-1', sensitive: true }],
        packages: [{ name: 'p.txt', sha256: blob.sha256, size: blob.size }],
      });
      assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
      assert.deepEqual(streamLines(handle, 'stdout'), ['secret: ********', 'package on the host']);
      assert.ok(
        handle.events.some(
          (e) => e.kind === 'variable' && e.name === 'Where' && e.value === 'host',
        ),
      );
      assert.ok(handle.events.some((e) => e.kind === 'artifact' && e.name === 'report.txt'));
    });
  });
});
