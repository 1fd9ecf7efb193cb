import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { linesJson } from '../../protocol/lines-json.js';
import { GENERATED, generatedSource } from '../../scripts/build-wasm.js';

/** What linesJson must equal whenever it answers. */
function expected(text: string, prefix: string, suffix: string): string {
  return `${prefix}${JSON.stringify(text.split('\n'))}${suffix}`;
}

function check(text: string, prefix = '{"lines":', suffix = '}\n'): 'encoded' | 'declined' {
  const result = linesJson(text, prefix, suffix);
  if (result === undefined) return 'declined';
  assert.equal(result.bytes.toString('utf8'), expected(text, prefix, suffix), JSON.stringify(text));
  assert.equal(result.lines, text.split('\n').length);
  return 'encoded';
}

/** A deterministic generator (xorshift), so that a failure can be run again. */
function randomText(seed: number, length: number, alphabet: string): string {
  let state = seed || 1;
  let text = '';
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    text += alphabet[(state >>> 0) % alphabet.length];
  }
  return text;
}

describe('linesJson (the busy log path’s encoder)', () => {
  it('is the JSON of the split lines, for lines of every length around its 16-byte steps', () => {
    for (let length = 0; length <= 70; length++) {
      const line = 'x'.repeat(length);
      assert.equal(check(line), 'encoded');
      assert.equal(check(`${line}\n${line}`), 'encoded');
      assert.equal(check(`\n${line}\n`), 'encoded');
    }
    assert.equal(check('\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n'), 'encoded');
    assert.equal(check('a~ \x7f'), 'encoded', 'DEL and the printable edges need no escape');
  });

  it('escapes as JSON.stringify does, at any position, and declines what is not ASCII', () => {
    const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).filter(
      (character) => character !== '\n',
    );
    for (const character of [...controls, '"', '\\', '\x7f']) {
      for (const at of [0, 1, 15, 16, 17, 31, 32, 47, 60]) {
        const text = `${'a'.repeat(at)}${character}${'b'.repeat(40)}\nlast`;
        assert.equal(check(text), 'encoded', `${JSON.stringify(character)} at ${at}`);
        assert.equal(check(text.slice(0, at + 1)), 'encoded', 'in the last, partial vector');
        assert.equal(check(character.repeat(at + 1)), 'encoded', 'one after another');
      }
    }
    for (const character of ['é', '€', '😀', '\ud800', '\u0080']) {
      for (const at of [0, 1, 15, 16, 17, 31, 32, 47, 60]) {
        const text = `${'a'.repeat(at)}${character}${'b'.repeat(40)}\nlast`;
        assert.equal(check(text), 'declined', `${JSON.stringify(character)} at ${at}`);
        assert.equal(check(text.slice(0, at + 1)), 'declined', 'in the last, partial vector');
      }
    }
  });

  it('matches JSON.stringify on random ASCII, and answers again after declining', () => {
    // Every ASCII character, line ends more often; every fifth text may also hold an é.
    const ascii = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join('');
    let encoded = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const alphabet = seed % 5 === 0 ? `${ascii}\n\n\né` : `${ascii}\n\n\n`;
      if (check(randomText(seed, seed % 300, alphabet)) === 'encoded') encoded += 1;
    }
    assert.ok(encoded > 2000, `${encoded} of 3000 encoded`);
  });

  it('grows its memory for long text and keeps the prefix and suffix as given', () => {
    const long = randomText(7, 300_000, 'abc \n');
    assert.equal(check(long, '{"taskId":"T-1","lines":', '}\t{"out":5}\n'), 'encoded');
    assert.equal(check('after', 'prefix é ', ' suffix 😀'), 'encoded', 'any UTF-8 around');
    assert.equal(linesJson('x'.repeat(1024 * 1024 + 1), '', ''), undefined, 'over 1 Mi chars');
  });

  it('declines in a runtime without WebAssembly, and the journal writes the same event', async function () {
    this.timeout(30_000);
    // `node --jitless` has no WebAssembly, as V8 without SIMD support cannot run the module.
    const script = `
      import { mkdtemp, rm } from 'node:fs/promises';
      import { tmpdir } from 'node:os';
      import { join } from 'node:path';
      import { linesJson } from ${JSON.stringify(new URL('../../protocol/lines-json.ts', import.meta.url).pathname)};
      import { parseTask } from ${JSON.stringify(new URL('../../protocol/index.ts', import.meta.url).pathname)};
      import { TaskJournal } from ${JSON.stringify(new URL('../../workspace/index.ts', import.meta.url).pathname)};
      const task = parseTask({ type: 'task', taskId: 'T-1', script: { syntax: 'sh', body: 'true' } });
      const home = await mkdtemp(join(tmpdir(), 'cuttle-jitless-'));
      const journal = await TaskJournal.create(home, task);
      const entry = await journal.append({ kind: 'log-text', stream: 'stdout', level: 'info', text: 'a\\tb\\nc' });
      console.log(JSON.stringify({ typeofWasm: typeof WebAssembly, encoded: linesJson('x', '', '') ?? null,
        sent: JSON.parse(entry.bytes.toString()), lineBytes: entry.lineBytes }));
      await journal.close();
      await rm(home, { recursive: true });`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: new URL('../..', import.meta.url).pathname },
    );
    const result: unknown = JSON.parse(stdout);
    assert.ok(typeof result === 'object' && result !== null);
    assert.deepEqual(
      {
        ...result,
        sent: {
          ...('sent' in result && typeof result.sent === 'object' ? result.sent : {}),
          time: 't',
        },
      },
      {
        typeofWasm: 'undefined',
        encoded: null,
        sent: {
          type: 'event',
          taskId: 'T-1',
          seq: 1,
          time: 't',
          kind: 'log',
          stream: 'stdout',
          level: 'info',
          lines: ['a\tb', 'c'],
        },
        lineBytes: 4,
      },
    );
  });

  it('was compiled from the .wat as it is now', async function () {
    this.timeout(20_000);
    assert.equal(
      await readFile(GENERATED, 'utf8'),
      await generatedSource(),
      'protocol/lines-json-wasm.ts is stale: run node --import tsx scripts/build-wasm.ts',
    );
  });
});
