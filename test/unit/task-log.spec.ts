import assert from 'node:assert/strict';
import { MAX_LOG_LINE_BYTES, type EventBody } from '../../protocol/index.js';
import { Masker } from '../../agent/masker.js';
import { splitUtf8, TaskLog } from '../../agent/task-log.js';

describe('TaskLog', () => {
  it('splits on character boundaries, never inside one', () => {
    const text = 'é'.repeat(10) + '😀'.repeat(10);
    const pieces = splitUtf8(text, 7);
    assert.equal(pieces.join(''), text);
    for (const piece of pieces) assert.ok(Buffer.byteLength(piece) <= 7);
    assert.ok(!pieces.some((p) => p.includes('\uFFFD')));
  });

  it('sends a line over 128 KiB as partial pieces that nothing interleaves', async () => {
    const events: EventBody[] = [];
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
    const events: EventBody[] = [];
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
    const events: EventBody[] = [];
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
