import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskEvent } from '../../protocol/index.js';
import { TaskRecord } from '../../protocol/reference-server/task-record.js';

describe('TaskRecord (reference server)', () => {
  const task = {
    type: 'task' as const,
    taskId: 'T-1',
    name: 'one',
    script: { syntax: 'sh' as const, body: 'true' },
    variables: [],
    packages: [],
  };
  const base = { type: 'event' as const, taskId: 'T-1', time: '2026-11-22T00:00:00.000Z' };
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-task-record-'));
    path = join(dir, 'events.jsonl');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** As the server does: the event's text goes to the events file, then the record counts it. */
  async function store(record: TaskRecord, event: TaskEvent, text = JSON.stringify(event)) {
    await appendFile(path, `${text}\n`);
    record.store(event);
  }

  it('keeps events as text, parses them once when read, and tracks phase and outcome', async () => {
    const record = new TaskRecord(
      { task, status: 'accepted', submittedAt: base.time, cancelRequested: false },
      { path, bytes: 0 },
    );
    const seen: TaskEvent[] = [];
    record.on('event', (event) => seen.push(event));
    const state: TaskEvent = { ...base, seq: 1, kind: 'state', state: 'running' };
    await store(record, state);
    // The frame as an agent sent it: an unknown field is kept in the text, not in the event.
    const logText = JSON.stringify({
      ...base,
      seq: 2,
      kind: 'log',
      stream: 'stdout',
      level: 'info',
      lines: ['a', 'b'],
      extra: 1,
    });
    await store(
      record,
      { ...base, seq: 2, kind: 'log', stream: 'stdout', level: 'info', lines: ['a', 'b'] },
      logText,
    );
    assert.equal(record.lastSeq, 2);
    assert.equal(record.hasResult, false);
    assert.equal(record.summary().phase, 'running');
    const first = record.events;
    assert.deepEqual(
      first.map((e) => e.seq),
      [1, 2],
    );
    assert.deepEqual(record.logLines(), ['a', 'b']);
    assert.equal(record.events[1], first[1], 'parsed once, not again on every read');

    await store(record, {
      ...base,
      seq: 3,
      kind: 'result',
      outcome: 'success',
      exitCode: 0,
      durationMs: 5,
    });
    assert.equal(record.hasResult, true);
    assert.equal(record.summary().outcome, 'success');
    assert.equal(record.status, 'finished');
    assert.deepEqual(
      record.events.map((e) => e.kind),
      ['state', 'log', 'result'],
    );
    assert.equal(seen.length, 3, 'listeners get every event as it is stored');
  });

  it('keeps no texts and reads stored events back from the file, after a restart too', async () => {
    const running: TaskEvent = { ...base, seq: 1, kind: 'state', state: 'running' };
    await writeFile(path, `${JSON.stringify(running)}\n`);
    const persisted = { task, status: 'accepted' as const, submittedAt: base.time };
    const bytes = (await readFile(path)).length;
    const record = new TaskRecord({ ...persisted, cancelRequested: false }, { path, bytes }, [
      running,
    ]);
    const lines: TaskEvent = {
      ...base,
      seq: 2,
      kind: 'log',
      stream: 'stdout',
      level: 'info',
      lines: ['é', 'b'],
    };
    await store(record, lines);
    assert.equal(record.lastSeq, 2);
    assert.deepEqual(record.logLines(), ['é', 'b']);
    const first = record.events;
    // A line written but not yet stored is not an event yet.
    await appendFile(path, `${JSON.stringify({ ...running, seq: 3 })}\n`);
    assert.equal(record.events.length, 2);
    assert.equal(record.events[1], first[1], 'parsed once, not again on every read');
  });
});
