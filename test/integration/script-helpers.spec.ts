/**
 * What a script author sees: Calamari's helpers in bash and in busybox sh, service messages, and
 * their events on the server. Needs: a Docker engine (images are built locally).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TaskEvent } from '../../protocol/index.js';
import { AgentEnv, demoTask, streamLines, uniqueTaskId } from '../support/agent-harness.js';
import { ensureBashImage } from '../support/bash-image.js';

const VARIABLES = [
  { name: 'Project.Name', value: 'Web Shop' },
  { name: 'MultiLine', value: 'first line\nsecond line\n  indented third' },
  { name: 'Unicode', value: 'Grüße, 世界 😀' },
  { name: 'Quotes', value: `it's "quoted" $HOME \`cmd\`` },
];

const HELPER_SCRIPT = `
echo "name=[$(get_octopusvariable project.name)]"
echo "multi=[$(get_octopusvariable MultiLine)]"
echo "unicode=[$(get_octopusvariable Unicode)]"
echo "quotes=[$(get_octopusvariable Quotes)]"
echo "unset=[$(get_octopusvariable Does.Not.Exist)] status=$?"
set_octopusvariable Result "done: $(get_octopusvariable Unicode)"
set_octopusvariable Token "tok-123-secret" -sensitive
echo "token is tok-123-secret"
write_highlight "a highlight"
write_verbose "a verbose line"
write_warning "a warning"
write_wait "waiting"
echo "back to normal"
update_progress 42 "almost half"
printf 'artifact body\\n' > report.txt
new_octopusartifact "$PWD/report.txt"
new_octopusartifact report.txt renamed.txt
`;

function levels(events: readonly TaskEvent[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const e of events) {
    if (e.kind === 'log' && e.stream === 'stdout')
      for (const line of e.lines) map.set(line, e.level);
  }
  return map;
}

describe('script helpers and service messages', function () {
  this.timeout(120_000);
  let env: AgentEnv;
  let bashImage: string;
  before(async () => {
    env = await AgentEnv.start();
    bashImage = await ensureBashImage(env.docker);
  });
  after(async () => {
    await env.dispose();
  });
  afterEach(function () {
    env.reportOnFailure(this);
  });

  for (const shell of ['bash', 'sh'] as const) {
    it(`work unchanged in ${shell === 'bash' ? 'bash' : 'busybox sh'}`, async () => {
      const taskId = uniqueTaskId(`helpers-${shell}`);
      const { handle, result } = await env.run({
        ...demoTask(taskId, HELPER_SCRIPT),
        script: { syntax: shell, body: HELPER_SCRIPT },
        container: {
          image: shell === 'bash' ? bashImage : 'cuttle-demo:busybox',
          pullPolicy: 'never',
        },
        variables: VARIABLES,
      });
      assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
      const out = streamLines(handle, 'stdout');
      assert.ok(out.includes('name=[Web Shop]'), out.join('\n'));
      const multi = out.indexOf('multi=[first line');
      assert.deepEqual(out.slice(multi, multi + 3), [
        'multi=[first line',
        'second line',
        '  indented third]',
      ]);
      assert.ok(out.includes('unicode=[Grüße, 世界 😀]'));
      assert.ok(out.includes(`quotes=[it's "quoted" $HOME \`cmd\`]`));
      assert.ok(out.includes('unset=[] status=0'));
      assert.ok(
        out.includes('token is ********'),
        'a sensitive output variable is masked from then on',
      );
      assert.ok(!out.some((l) => l.includes('##octopus')), 'service messages are not forwarded');

      const variables = handle.events.flatMap((e) => (e.kind === 'variable' ? [e] : []));
      assert.deepEqual(
        variables.map((v) => [v.name, v.value, v.sensitive]),
        [
          ['Result', 'done: Grüße, 世界 😀', false],
          ['Token', 'tok-123-secret', true],
        ],
      );
      const level = levels(handle.events);
      assert.equal(level.get('a highlight'), 'highlight');
      assert.equal(level.get('a verbose line'), 'verbose');
      assert.equal(level.get('a warning'), 'warning');
      assert.equal(level.get('waiting'), 'wait');
      assert.equal(level.get('back to normal'), 'info');
      const progress = handle.events.find((e) => e.kind === 'progress' && e.activity === 'script');
      assert.ok(
        progress?.kind === 'progress' &&
          progress.percent === 42 &&
          progress.message === 'almost half',
      );

      const artifacts = handle.events.flatMap((e) => (e.kind === 'artifact' ? [e] : []));
      assert.deepEqual(
        artifacts.map((a) => a.name),
        ['report.txt', 'renamed.txt'],
      );
      const expected = createHash('sha256').update('artifact body\n').digest('hex');
      for (const artifact of artifacts) {
        assert.equal(artifact.sha256, expected);
        assert.match(artifact.path, /\/report\.txt$/);
        const stored = await readFile(env.server.artifactPath(artifact.sha256), 'utf8');
        assert.equal(stored, 'artifact body\n');
      }
    });
  }

  it('fail_step fails the step with its message', async () => {
    const { handle, result } = await env.run(
      demoTask(uniqueTaskId('fail'), 'echo before\nfail_step "the database is gone"\necho after'),
    );
    assert.equal(result.outcome, 'failure');
    assert.equal(result.exitCode, 1);
    assert.ok(streamLines(handle, 'system').some((l) => l.includes('the database is gone')));
    assert.ok(!streamLines(handle, 'stdout').includes('after'));
  });

  it('turns broken and unknown service messages into warnings, never a crash', async () => {
    const script = [
      `echo "##octopus[setVariable name='not base64!' value='eA==']"`,
      `echo "##octopus[noSuchMessage value='eA==']"`,
      `echo "##octopus[setVariable name='eA=='"`,
      'echo still running',
    ].join('\n');
    const { handle, result } = await env.run(demoTask(uniqueTaskId('broken'), script));
    assert.equal(result.outcome, 'success');
    const warnings = handle.events.filter(
      (e) => e.kind === 'log' && e.stream === 'system' && e.level === 'warning',
    );
    assert.equal(warnings.length, 3, JSON.stringify(warnings));
    assert.ok(streamLines(handle, 'stdout').includes('still running'));
    assert.ok(!streamLines(handle, 'stdout').some((l) => l.includes('##octopus')));
  });

  it('parses a service message split across reads and one longer than 1 MiB', async () => {
    const big = 'v'.repeat(700 * 1024);
    const script = [
      // The message arrives in two writes with a pause between them.
      `printf "##octopus[setVariable name='%s' " "$(printf Split | base64)"; sleep 0.3; printf "value='%s']\\n" "$(printf joined | base64)"`,
      `set_octopusvariable Big "$(head -c ${big.length} /dev/zero | tr '\\0' v)"`,
      `head -c 1500000 /dev/zero | tr '\\0' x; echo`,
    ].join('\n');
    const { handle, result } = await env.run(demoTask(uniqueTaskId('long'), script));
    assert.equal(result.outcome, 'success', streamLines(handle, 'system').join('\n'));
    const variables = handle.events.flatMap((e) => (e.kind === 'variable' ? [e] : []));
    assert.deepEqual(variables[0] && [variables[0].name, variables[0].value], ['Split', 'joined']);
    assert.equal(variables[1]?.value, big, 'a 700 KiB value in a ~1 MiB line');
    assert.deepEqual(streamLines(handle, 'stdout'), ['x'.repeat(1_500_000)]);
  });
});
