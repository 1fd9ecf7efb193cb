import assert from 'node:assert/strict';
import { MAX_LOG_LINE_BYTES } from '../../protocol/index.js';
import type { JournalInput } from '../../workspace/index.js';
import { Masker } from '../../agent/masker.js';
import { linesOfText } from '../../agent/output-tail.js';
import { splitUtf8, TaskLog } from '../../agent/task-log.js';
import { logLines } from '../support/log-lines.js';

describe('TaskLog', () => {
  it('splits on character boundaries, never inside one', () => {
    const text = 'é'.repeat(10) + '😀'.repeat(10);
    const pieces = splitUtf8(text, 7);
    assert.equal(pieces.join(''), text);
    for (const piece of pieces) assert.ok(Buffer.byteLength(piece) <= 7);
    assert.ok(!pieces.some((p) => p.includes('\uFFFD')));
  });

  it('sends a line over 128 KiB as partial pieces that nothing interleaves', async () => {
    const events: JournalInput[] = [];
    const log = new TaskLog(async (body) => {
      events.push(body);
      await new Promise((resolve) => setImmediate(resolve));
    }, new Masker());
    const long = 'x'.repeat(MAX_LOG_LINE_BYTES * 2 + 10);
    await Promise.all([
      log.write('stdout', 'info', [long]),
      log.write('stderr', 'info', ['other']),
    ]);
    const logs = events.filter((e) => e.kind === 'log');
    const stdout = logs.filter((e) => e.stream === 'stdout');
    assert.equal(stdout.length, 3);
    assert.deepEqual(
      stdout.map((e) => e.partial === true),
      [true, true, false],
    );
    assert.equal(stdout.map((e) => e.lines.join('')).join(''), long);
    const first = logs.indexOf(stdout[0]!);
    assert.deepEqual(logs.slice(first, first + 3), stdout, 'no other event between the pieces');
  });

  it('holds the log for a stream whose line is still being written', async () => {
    const events: JournalInput[] = [];
    const log = new TaskLog(async (body) => {
      events.push(body);
    }, new Masker());
    await log.partial('stdout', 'info', 'start of a long line', 20);
    const other = log.write('stderr', 'info', ['waits']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(events.length, 1, 'stderr waits until the stdout line ends');
    await log.write('stdout', 'info', ['end of it']);
    await other;
    assert.deepEqual(
      events.map((e) => (e.kind === 'log' ? `${e.stream}:${e.lines.join()}` : e.kind)),
      ['stdout:start of a long line', 'stdout:end of it', 'stderr:waits'],
    );
  });

  it('masks secrets and batches lines', async () => {
    const events: JournalInput[] = [];
    const masker = new Masker();
    masker.add('s3cret');
    const log = new TaskLog(async (body) => {
      events.push(body);
    }, masker);
    await log.write('stdout', 'info', ['a s3cret', 'b', 'c']);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0]?.kind === 'log' ? events[0].lines : [], ['a ********', 'b', 'c']);
  });
});

describe('TaskLog: whole lines as one text (the fast path)', () => {
  /** Runs `text` (ending at `end`) through writeText and through write, line by line. */
  async function both(
    text: string,
    end: number,
    secrets: string[] = [],
  ): Promise<{ fast: Recorded[]; slow: Recorded[] }> {
    const record = async (write: (log: TaskLog) => Promise<void>): Promise<Recorded[]> => {
      const masker = new Masker();
      for (const secret of secrets) masker.add(secret);
      const recorded: Recorded[] = [];
      const log = new TaskLog(async (body, advance) => {
        const lines = logLines(body);
        if (lines !== undefined) recorded.push({ lines, end: advance?.end });
      }, masker);
      await write(log);
      return recorded;
    };
    const { lines, ends } = linesOfText(text, end);
    return {
      fast: await record((log) => log.writeText('stdout', 'info', text, end)),
      slow: await record((log) => log.write('stdout', 'info', lines, ends)),
    };
  }
  interface Recorded {
    lines: string[];
    end: number | undefined;
  }
  const joined = (events: Recorded[]): string[] => events.flatMap((e) => e.lines);

  it('sends the same lines, masked the same, with the same file offsets', async () => {
    const text = ['one', '', 'a s3cret here', 'multi', 'line', 'last'].join('\n');
    const end = 1000 + text.length + 1;
    const { fast, slow } = await both(text, end, ['s3cret', 'multi\nline']);
    assert.deepEqual(joined(fast), ['one', '', 'a ******** here', '********', '********', 'last']);
    assert.deepEqual(joined(fast), joined(slow));
    assert.equal(fast.at(-1)?.end, end);
    assert.equal(slow.at(-1)?.end, end);
  });

  it('cuts batches at line ends, each under 128 K characters, each with its own end', async () => {
    const line = 'x'.repeat(99);
    const text = Array.from({ length: 4000 }, () => line).join('\n'); // 400,000 characters
    const { fast } = await both(text, text.length + 1);
    assert.ok(fast.length >= 4, `${fast.length} batches`);
    let position = 0;
    for (const batch of fast) {
      assert.ok(batch.lines.join('\n').length <= 128 * 1024);
      position += batch.lines.length * 100;
      assert.equal(batch.end, position, 'each batch reaches just after its last line');
    }
    assert.equal(joined(fast).length, 4000);
  });

  it('falls back to line by line for a line longer than a batch, or masking that grows a batch', async () => {
    const long = 'y'.repeat(200 * 1024);
    const text = `short\n${long}\ntail`;
    const { fast, slow } = await both(text, text.length + 1);
    // Compared as booleans: a failure would otherwise print 200 K characters.
    assert.ok(JSON.stringify(fast) === JSON.stringify(slow), 'the same events either way');
    assert.ok(joined(fast).join('') === `short${long}tail`);

    // Each one-character secret becomes eight: 100 K characters would grow to 800 K.
    const grows = Array.from({ length: 1000 }, () => 'a'.repeat(100)).join('\n');
    const masked = await both(grows, grows.length + 1, ['a']);
    assert.ok(JSON.stringify(masked.fast) === JSON.stringify(masked.slow), 'the same events');
    for (const batch of masked.fast) assert.ok(batch.lines.join('\n').length <= 128 * 1024);
  });

  it('hands busy output to the journal joined, and a few lines split', async () => {
    const kinds: string[] = [];
    const log = new TaskLog(async (body) => {
      kinds.push(body.kind);
    }, new Masker());
    await log.writeText('stdout', 'info', 'a few\nlines', 13);
    const busy = Array.from({ length: 1000 }, () => 'x'.repeat(39)).join('\n'); // 40,000 chars
    await log.writeText('stdout', 'info', busy, 13 + busy.length + 1);
    // Only busy output loads the WebAssembly encoder, which stays resident (~1.4 MiB).
    assert.deepEqual(kinds, ['log', 'log-text']);
  });

  it('ends a line sent in pieces before anything else of its stream', async () => {
    const events: string[][] = [];
    const log = new TaskLog(async (body) => {
      const lines = logLines(body);
      if (lines !== undefined) events.push(lines);
    }, new Masker());
    await log.partial('stdout', 'info', 'start-', 6);
    await log.writeText('stdout', 'info', 'end\nnext', 15);
    assert.deepEqual(events, [['start-'], ['end'], ['next']]);
  });

  it('ends a line whose stream sends no more, so that later writers do not wait for good', async () => {
    const events: JournalInput[] = [];
    const masker = new Masker();
    masker.add('secret-value');
    const log = new TaskLog(async (body) => {
      events.push(body);
    }, masker);
    // The held-back end of a piece (it could be the start of a secret) goes out masked.
    await log.partial('stderr', 'warning', 'start of a line, then secret-val', 32);
    const later = log.system('error', 'reading the output failed');
    await log.endOpenLine();
    await later;
    assert.deepEqual(
      events.map((e) => (e.kind === 'log' ? [e.stream, e.level, e.lines.join(), !!e.partial] : [])),
      [
        ['stderr', 'warning', 'start of a line, then', true],
        ['stderr', 'warning', ' secret-val', false],
        ['system', 'error', 'reading the output failed', false],
      ],
    );
    await log.endOpenLine(); // nothing open: nothing sent
    assert.equal(events.length, 3);
  });
});
