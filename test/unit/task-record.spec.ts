import assert from 'node:assert/strict';
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

  it('keeps events as text, parses them once when read, and tracks phase and outcome', () => {
    const record = new TaskRecord({
      task,
      status: 'accepted',
      submittedAt: base.time,
      cancelRequested: false,
    });
    const seen: TaskEvent[] = [];
    record.on('event', (event) => seen.push(event));
    const state: TaskEvent = { ...base, seq: 1, kind: 'state', state: 'running' };
    record.store(state);
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
    record.store(
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

    record.store({
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
});
