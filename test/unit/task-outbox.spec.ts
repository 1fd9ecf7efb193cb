import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TaskOutbox, type EventChannel } from '../../agent/task-outbox.js';
import { parseTask } from '../../protocol/index.js';
import { TaskJournal } from '../../workspace/index.js';
import { eventually } from '../support/eventually.js';

const task = parseTask({ type: 'task', taskId: 'T-1', script: { syntax: 'sh', body: 'true' } });

/**
 * The connection as the outbox sees it (an interface of three members): records what is sent,
 * fails the next `failures` text frames with a local error while staying connected, and with
 * `dropOnNextSend` loses the connection in the middle of a send.
 */
class RecordingChannel implements EventChannel {
  connected = true;
  failures = 0;
  dropOnNextSend = false;
  readonly sent: number[] = [];

  async sendText(text: Buffer): Promise<void> {
    if (this.dropOnNextSend) {
      this.dropOnNextSend = false;
      this.connected = false;
      throw new Error('connection lost while sending');
    }
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('simulated local failure');
    }
    const parsed: unknown = JSON.parse(text.toString('utf8'));
    assert.ok(typeof parsed === 'object' && parsed !== null && 'seq' in parsed);
    assert.equal(typeof parsed.seq, 'number');
    this.sent.push(Number(parsed.seq));
  }

  async sendBlob(): Promise<void> {
    assert.fail('no artifacts in these tests');
  }
}

describe('TaskOutbox', () => {
  let dir: string;
  let journal: TaskJournal;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-outbox-'));
    journal = await TaskJournal.create(dir, task);
    for (let i = 1; i <= 5; i++) {
      await journal.append({ kind: 'log', stream: 'stdout', level: 'info', lines: [`line ${i}`] });
    }
  });
  afterEach(async () => {
    await journal.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries after a local failure with the connection up, reports it once, and loses nothing', async () => {
    const channel = new RecordingChannel();
    channel.failures = 2;
    const errors: unknown[] = [];
    const outbox = new TaskOutbox(journal, channel, (error) => errors.push(error));
    outbox.resume(1);
    // Two failed attempts: at most 0.5 s, then 1 s of pause before the third.
    await eventually(() => channel.sent.length === 5, 'all five events sent');
    assert.deepEqual(channel.sent, [1, 2, 3, 4, 5]);
    assert.equal(errors.length, 1, 'one report for failures in a row');
    assert.ok(outbox.ack(5) === false, 'no result yet: the task is not complete');
  });

  it('waits for the next resume, without retrying, when the connection went away', async () => {
    const channel = new RecordingChannel();
    channel.dropOnNextSend = true;
    const errors: unknown[] = [];
    const outbox = new TaskOutbox(journal, channel, (error) => errors.push(error));
    outbox.resume(1);
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.deepEqual(channel.sent, [], 'nothing is sent while disconnected');
    outbox.disconnected();
    channel.connected = true;
    outbox.resume(1);
    await eventually(() => channel.sent.length === 5, 'all five events sent after the resume');
    assert.deepEqual(errors, [], 'a lost connection is not an error');
  });

  it('does not send an event read for an earlier connection on the next one', async () => {
    // Holds the journal's first read of event 3 until released, to disconnect and resume then.
    const read = journal.read.bind(journal);
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    journal.read = async (seq) => {
      if (seq === 3 && !holding) {
        holding = true;
        await released;
      }
      return read(seq);
    };
    const channel = new RecordingChannel();
    const errors: unknown[] = [];
    const outbox = new TaskOutbox(journal, channel, (error) => errors.push(error));
    outbox.resume(1);
    await eventually(() => holding, 'the read of event 3 is held');
    assert.deepEqual(channel.sent, [1, 2]);
    // The connection drops and a new one resumes from 2 while event 3 is being read.
    outbox.disconnected();
    const firstConnection = channel.sent.splice(0);
    outbox.resume(2);
    release();
    await eventually(() => channel.sent.length >= 4, 'events 2 to 5 on the new connection');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(firstConnection, [1, 2]);
    assert.deepEqual(channel.sent, [2, 3, 4, 5], 'from fromSeq on, in order, nothing before');
    assert.deepEqual(errors, []);
  });

  it('after a restart, takes compacted events as acknowledged and resumes below them from the first held', async () => {
    for (let i = 6; i <= 10; i++) {
      await journal.append({ kind: 'log', stream: 'stdout', level: 'info', lines: [`line ${i}`] });
    }
    await journal.compact(6, 0);
    await journal.close();
    // The agent restarts: its journal is loaded, and the outbox knows no ack but the compaction.
    const [loaded] = await TaskJournal.loadAll(dir, (error) => assert.fail(error));
    assert.ok(loaded !== undefined);
    journal = loaded;
    assert.equal(journal.compactedSeq, 6);
    const channel = new RecordingChannel();
    const errors: unknown[] = [];
    const outbox = new TaskOutbox(journal, channel, (error) => errors.push(error));
    // What the agent compares fromSeq with, to answer a resume below it with `error`.
    assert.equal(outbox.ackedSeq, 6);
    outbox.resume(1);
    await eventually(() => channel.sent.length === 4, 'events 7 to 10 sent', 3_000);
    assert.deepEqual(channel.sent, [7, 8, 9, 10]);
    assert.deepEqual(errors, [], 'no read of a compacted event');
  });
});
