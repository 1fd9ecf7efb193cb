import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linesOfText, OutputTail } from '../../agent/output-tail.js';

describe('OutputTail', () => {
  let dir: string;
  const tails: OutputTail[] = [];
  /** A tail that afterEach releases: reading ends with the file still open. */
  function follow(path: string, options: ConstructorParameters<typeof OutputTail>[1]): OutputTail {
    const tail = new OutputTail(path, options);
    tails.push(tail);
    return tail;
  }
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-tail-'));
  });
  afterEach(async () => {
    await Promise.all(tails.splice(0).map((tail) => tail.release()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Whether this process holds `path` open (readlink of /proc/self/fd, Linux). */
  async function isOpen(path: string): Promise<boolean> {
    const links = await Promise.all(
      (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    );
    return links.some((link) => link.startsWith(path));
  }

  it('keeps the file open after reading until released, so removing it is instant', async () => {
    const path = join(dir, 'out');
    await writeFile(path, 'one\ntwo\n');
    const tail = follow(path, { maxPendingBytes: 1024 });
    tail.finish();
    await tail.run({ lines: async () => undefined, partial: async () => undefined });
    await rm(path);
    assert.ok(await isOpen(path), 'still open once the file is removed: the kernel frees it later');
    await tail.release();
    assert.ok(!(await isOpen(path)), 'closed by release()');
  });

  it('follows a growing file, joining lines split across writes, until finished', async () => {
    const path = join(dir, 'out');
    await writeFile(path, '');
    const tail = follow(path, { maxPendingBytes: 1024 });
    const lines: string[] = [];
    const running = tail.run({
      lines: async (batch) => {
        lines.push(...batch);
      },
      partial: async () => assert.fail('no partial expected'),
    });
    await appendFile(path, 'one\ntw');
    await new Promise((resolve) => setTimeout(resolve, 60));
    await appendFile(path, 'o\r\nthr€€\nlast without newline');
    tail.finish();
    await running;
    assert.deepEqual(lines, ['one', 'two', 'thr€€', 'last without newline']);
  });

  it('resumes from a byte offset, and hands over an overlong line in pieces', async () => {
    const path = join(dir, 'out');
    await writeFile(path, `skipped\n${'x'.repeat(25)}`);
    const tail = follow(path, { position: 8, maxPendingBytes: 10 });
    const pieces: string[] = [];
    const lines: string[] = [];
    tail.finish();
    await tail.run({
      lines: async (batch) => {
        lines.push(...batch);
      },
      partial: async (piece) => {
        pieces.push(piece);
      },
    });
    assert.equal(pieces.join('') + lines.join(''), 'x'.repeat(25));
    assert.ok(pieces.length >= 1);
  });

  it('holds a service message of several MiB whole across reads, then carries on', async () => {
    const path = join(dir, 'out');
    // Over three reads' worth without a line end: held whole (not sent in pieces) until it ends.
    const message = `##octopus[setVariable name='QQ==' value='${'QUFB'.repeat(800_000)}']`;
    const after = Array.from({ length: 50_000 }, (_, i) => `after ${i}`);
    await writeFile(path, `first\n${message.slice(0, 1_500_000)}`);
    const tail = follow(path, { maxPendingBytes: 128 * 1024 });
    const lines: string[] = [];
    const ends: number[] = [];
    const record = async (batch: string[], batchEnds: number[]): Promise<void> => {
      lines.push(...batch);
      ends.push(...batchEnds);
    };
    const running = tail.run({
      lines: record,
      text: async (text, end) => {
        const split = linesOfText(text, end);
        await record(split.lines, split.ends);
      },
      partial: async () => assert.fail('a service message is never sent in pieces'),
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await appendFile(path, `${message.slice(1_500_000)}\n${after.join('\n')}\n`);
    tail.finish();
    await running;
    assert.equal(lines.length, 2 + after.length);
    assert.equal(lines[0], 'first');
    assert.ok(lines[1] === message, 'the message arrives whole, as one line');
    assert.deepEqual(lines.slice(2), after);
    assert.equal(ends[1], 6 + message.length + 1);
    assert.equal(ends.at(-1), 6 + message.length + 1 + after.join('\n').length + 1);
  });

  it('hands over a long line of bytes that start no character, in pieces, and ends', async function () {
    this.timeout(5000);
    const path = join(dir, 'out');
    await writeFile(path, Buffer.alloc(300 * 1024, 0x80)); // continuation bytes only, no line end
    const tail = follow(path, { maxPendingBytes: 128 * 1024 });
    let pieces = 0;
    let reached = 0;
    tail.finish();
    await tail.run({
      lines: async (_lines, ends) => {
        reached = ends.at(-1) ?? reached;
      },
      partial: async (_piece, end) => {
        pieces += 1;
        reached = end;
      },
    });
    assert.equal(pieces, 2);
    assert.equal(reached, 300 * 1024, 'every byte handed over, the last offset exact');
  });

  it('gives each line its exact end offset, also for CRLF and bytes that are not UTF-8', async () => {
    const path = join(dir, 'out');
    const content = Buffer.concat([
      Buffer.from('a\r\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from('é\n'),
    ]);
    await writeFile(path, content);
    const tail = follow(path, { maxPendingBytes: 1024 });
    const ends: number[] = [];
    tail.finish();
    await tail.run({
      lines: async (_lines, lineEnds) => {
        ends.push(...lineEnds);
      },
      partial: async () => assert.fail('no partial expected'),
    });
    assert.deepEqual(ends, [3, 6, content.length]);
  });

  it('hands ASCII lines over as one text, and anything else line by line, with the same offsets', async () => {
    const path = join(dir, 'out');
    const content = 'plain\nascii lines\n\nwith CR\r\nné\nplain again\nrest';
    await writeFile(path, content);
    const tail = follow(path, { maxPendingBytes: 1024 });
    const lines: string[] = [];
    const ends: number[] = [];
    const texts: string[] = [];
    const running = tail.run({
      lines: async (batch, lineEnds) => {
        lines.push(...batch);
        ends.push(...lineEnds);
      },
      text: async (text, end) => {
        texts.push(text);
        const split = linesOfText(text, end);
        lines.push(...split.lines);
        ends.push(...split.ends);
      },
      partial: async () => assert.fail('no partial expected'),
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await appendFile(path, '\nlast\n');
    tail.finish();
    await running;
    assert.deepEqual(lines, [
      'plain',
      'ascii lines',
      '',
      'with CR',
      'né',
      'plain again',
      'rest',
      'last',
    ]);
    const bytes = Buffer.from(`${content}\nlast\n`);
    const expected: number[] = [];
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) expected.push(i + 1);
    assert.deepEqual(ends, expected);
    assert.deepEqual(texts, ['rest\nlast'], 'the read with a CR and an é went line by line');
  });

  it('hands a large read of ASCII lines over in pieces of about 64 KiB, cut at line ends', async () => {
    const path = join(dir, 'out');
    // 300 KiB of lines of varied length, one of them longer than a piece, and an empty one.
    const parts: string[] = [];
    for (let i = 0; parts.join('\n').length < 300 * 1024; i++) parts.push('x'.repeat(i % 97));
    parts.splice(500, 0, 'L'.repeat(70 * 1024));
    const content = `${parts.join('\n')}\n`;
    await writeFile(path, content);
    const tail = follow(path, { maxPendingBytes: 1024 * 1024 });
    const texts: string[] = [];
    const ends: number[] = [];
    tail.finish();
    await tail.run({
      lines: async () => assert.fail('all of it is plain ASCII'),
      text: async (text, end) => {
        texts.push(text);
        ends.push(...linesOfText(text, end).ends);
      },
      partial: async () => assert.fail('no partial expected'),
    });
    assert.ok(texts.length >= 5, `${texts.length} pieces`);
    for (const text of texts) {
      assert.ok(
        text.length <= 64 * 1024 || !text.includes('\n'),
        'only a single long line exceeds a piece',
      );
    }
    assert.equal(texts.join('\n'), parts.join('\n'));
    const expected: number[] = [];
    for (let i = content.indexOf('\n'); i >= 0; i = content.indexOf('\n', i + 1))
      expected.push(i + 1);
    assert.deepEqual(ends, expected);
  });
});
