import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CuttleError } from '../../protocol/errors.js';
import { OptionsInvalidError, splitWords } from '../../images/container-options/index.js';

function refusal(input: string): string {
  try {
    splitWords(input);
  } catch (error) {
    assert.ok(error instanceof OptionsInvalidError);
    assert.ok(error instanceof CuttleError);
    assert.equal(error.code, 'options-invalid');
    return error.message;
  }
  assert.fail(`expected ${JSON.stringify(input)} to be refused`);
}

describe('container options: POSIX word splitting', function () {
  const cases: [string, string[]][] = [
    ['', []],
    ['   \t\n ', []],
    ['-e FOO=bar', ['-e', 'FOO=bar']],
    ['  --memory=1g\t--cpus  1.5 ', ['--memory=1g', '--cpus', '1.5']],
    [`-e 'A=hello world'`, ['-e', 'A=hello world']],
    [`-e "A=hello world"`, ['-e', 'A=hello world']],
    [`-e A="hello"' world'`, ['-e', 'A=hello world']],
    [`-e 'A=$HOME and \`x\` and \\n'`, ['-e', 'A=$HOME and `x` and \\n']],
    [`-e "A=\\"q\\" \\\\ \\$ \\n"`, ['-e', 'A="q" \\ $ \\n']],
    [`-e A=hello\\ world`, ['-e', 'A=hello world']],
    [`-e A=\\'x\\"`, ['-e', `A='x"`]],
    [`--label ''`, ['--label', '']],
    [`--label ""`, ['--label', '']],
    ['-v /a:/b \\\n  -e X=1', ['-v', '/a:/b', '-e', 'X=1']],
    [`-e "A=line1\\\nline2"`, ['-e', 'A=line1line2']],
    [`-e "A=multi\nline"`, ['-e', 'A=multi\nline']],
    ['--init # a comment\n-e A=1', ['--init', '-e', 'A=1']],
    ['-e A=#not-a-comment', ['-e', 'A=#not-a-comment']],
    ['-v /data/*:/x -e A=[b]?', ['-v', '/data/*:/x', '-e', 'A=[b]?']],
    ['-e A=~ -v x:~/y', ['-e', 'A=~', '-v', 'x:~/y']],
    [`'~/x'`, ['~/x']],
    [
      '--health-cmd "curl -f http://localhost/ || exit 1"',
      ['--health-cmd', 'curl -f http://localhost/ || exit 1'],
    ],
  ];

  for (const [input, words] of cases) {
    it(`splits ${JSON.stringify(input)}`, function () {
      assert.deepEqual(splitWords(input), words);
    });
  }

  it('splits every case exactly as /bin/sh does (the shell is only the test oracle)', function () {
    for (const [input, words] of cases) {
      if (input.includes('#')) continue; // comments would swallow the oracle's closing code
      const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${input}`], {
        env: { PATH: '/usr/bin:/bin' },
      }).toString();
      // printf with no arguments still prints one empty word.
      const shell = words.length === 0 ? [] : out.split('\0').slice(0, -1);
      assert.deepEqual(splitWords(input), shell, input);
    }
  });

  it('refuses an unclosed single quote, naming where it starts', function () {
    assert.equal(
      refusal(`-e 'A=b`),
      `Octopus.Action.Container.Options: unclosed single quote (') at character 4 of "-e 'A=b".`,
    );
  });

  it('refuses an unclosed double quote', function () {
    assert.equal(
      refusal('-e "A=b'),
      'Octopus.Action.Container.Options: unclosed double quote (") at character 4 of "-e \\"A=b".',
    );
  });

  it('refuses a trailing backslash', function () {
    assert.equal(
      refusal('-e A=b\\'),
      'Octopus.Action.Container.Options: a trailing backslash (\\) escapes nothing at character 7 of "-e A=b\\\\".',
    );
  });

  it('refuses variable expansion, unquoted or in double quotes', function () {
    assert.match(refusal('-e A=$HOME'), /"\$" would expand a variable of the worker's environment/);
    assert.match(refusal('-e "A=${HOME}"'), /at character 7 /);
  });

  it('refuses command substitution', function () {
    assert.match(refusal('-e A=`id`'), /a backquote \(`\) would run a command on the worker/);
  });

  it('refuses shell operators', function () {
    for (const op of [';', '&', '|', '<', '>', '(', ')']) {
      assert.match(
        refusal(`--init ${op} rm -rf /`),
        new RegExp(`unquoted shell operator "\\${op}"`),
      );
    }
  });

  it('refuses home expansion at the start of a word', function () {
    assert.match(refusal('-v ~/x:/x'), /unquoted ~ at the start of a word/);
  });
});
