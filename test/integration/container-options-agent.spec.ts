/**
 * Octopus.Action.Container.Options through the agent: applied to the step container, refused by
 * the worker policy or as invalid with the right codes, and mounted folders serve artifacts.
 * Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import {
  AgentEnv,
  demoTask,
  makeTempDir,
  streamLines,
  uniqueTaskId,
} from '../support/agent-harness.js';

const OPTIONS = 'Octopus.Action.Container.Options';

describe('container options through the agent', function () {
  this.timeout(60_000);
  let env: AgentEnv;
  let shared: string;
  before(async () => {
    shared = await makeTempDir('shared');
    await writeFile(join(shared, 'input.txt'), 'from the worker\n');
    env = await AgentEnv.start({ agent: { allowedBindMounts: [shared] } });
  });
  after(async () => {
    await env.dispose();
    await rm(shared, { recursive: true, force: true });
  });
  afterEach(function () {
    env.reportOnFailure(this);
  });

  it('applies them to the step container, and collects artifacts from mounted folders', async () => {
    const script = [
      'echo "FOO=$FOO"',
      'cat /data/input.txt',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
      'hostname',
      'pwd',
      'echo report > /data/out.txt',
      'new_octopusartifact /data/out.txt',
    ].join('\n');
    const { handle, result } = await env.run({
      ...demoTask(uniqueTaskId('opts'), script),
      variables: [
        {
          name: OPTIONS,
          value: `--memory 256m --env FOO="bar baz" -v ${shared}:/data --hostname step-host -w /tmp`,
        },
      ],
    });
    assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
    const out = streamLines(handle, 'stdout');
    assert.equal(out[0], 'FOO=bar baz');
    assert.equal(out[1], 'from the worker');
    assert.equal(out[2], String(256 * 1024 * 1024));
    assert.equal(out[3], 'step-host');
    assert.match(out[4] ?? '', /\/Work\//, 'the script still starts in its temp folder despite -w');
    const artifact = handle.events.find((e) => e.kind === 'artifact');
    assert.ok(artifact?.kind === 'artifact' && artifact.name === 'out.txt');
  });

  it('refuses what the worker policy forbids with options-forbidden, naming the setting', async () => {
    for (const options of [
      '--privileged',
      '--network host',
      '-v /:/host',
      '-v /var/run/docker.sock:/s',
      '--cap-add ALL',
      '-v /srv:/srv',
    ]) {
      const { handle, result } = await env.run({
        ...demoTask(uniqueTaskId('forbidden'), 'echo must not run'),
        variables: [{ name: OPTIONS, value: options }],
      });
      assert.equal(result.outcome, 'error', options);
      assert.equal(
        result.error?.code,
        'options-forbidden',
        `${options}: ${result.error?.message ?? ''}`,
      );
      assert.match(result.error?.message ?? '', /--allow-|allow[A-Z]/, options);
      assert.ok(!streamLines(handle, 'stdout').includes('must not run'));
    }
  });

  it("refuses the agent's own home even under an allowed prefix", async () => {
    // Every temp folder allowed: the agent's home (a temp folder too) is still not a step's.
    const wide = await AgentEnv.start({ agent: { allowedBindMounts: [tmpdir()] } });
    try {
      const home = wide.agent.home.root;
      for (const options of [`-v ${home}/Work:/work`, `-v ${home}:/home`]) {
        const { handle, result } = await wide.run({
          ...demoTask(uniqueTaskId('protected'), 'echo must not run'),
          variables: [{ name: OPTIONS, value: options }],
        });
        assert.equal(result.error?.code, 'options-forbidden', `${options}: ${result.outcome}`);
        assert.ok(!streamLines(handle, 'stdout').includes('must not run'));
      }
      const allowed = await wide.run({
        ...demoTask(uniqueTaskId('allowed'), 'cat /shared/input.txt'),
        variables: [{ name: OPTIONS, value: `-v ${shared}:/shared:ro` }],
      });
      assert.equal(allowed.result.outcome, 'success', JSON.stringify(allowed.result));
    } finally {
      await wide.dispose();
    }
  });

  it('refuses unknown and step-breaking options with options-invalid', async () => {
    const cases: [string, RegExp][] = [
      ['--memroy 1g', /--memory/],
      ['--rm', /--rm/],
      ['-it', /-i|-t|interactive|tty/],
      ['--env "unclosed', /quote/i],
    ];
    for (const [options, message] of cases) {
      const { result } = await env.run({
        ...demoTask(uniqueTaskId('invalid'), 'echo must not run'),
        variables: [{ name: OPTIONS.toLowerCase(), value: options }],
      });
      assert.equal(result.error?.code, 'options-invalid', options);
      assert.match(result.error?.message ?? '', message, options);
    }
  });
});
