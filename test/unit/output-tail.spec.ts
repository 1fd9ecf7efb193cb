import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputTail } from '../../agent/output-tail.js';

describe('OutputTail', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-tail-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('follows a growing file, joining lines split across writes, until finished', async () => {
    const path = join(dir, 'out');
    await writeFile(path, '');
    const tail = new OutputTail(path, { maxPendingBytes: 1024 });
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
    const tail = new OutputTail(path, { position: 8, maxPendingBytes: 10 });
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

  it('gives each line its exact end offset, also for CRLF and bytes that are not UTF-8', async () => {
    const path = join(dir, 'out');
    const content = Buffer.concat([
      Buffer.from('a\r\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from('é\n'),
    ]);
    await writeFile(path, content);
    const tail = new OutputTail(path, { maxPendingBytes: 1024 });
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
});
