/**
 * The reference server against a hand-driven fake agent over a real loopback socket. The real
 * agent is tested elsewhere; here every frame is chosen by the test.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { BlobReceiver, hashFile, sendBlob } from '../../protocol/blob-stream.js';
import { decodeBlobFrame, encodeMessage } from '../../protocol/codec.js';
import { BlobCorruptError, CuttleError } from '../../protocol/errors.js';
import {
  MAX_TEXT_FRAME_BYTES,
  type AgentMessage,
  type TaskEvent,
} from '../../protocol/messages.js';
import {
  ReferenceServer,
  type ReferenceServerOptions,
} from '../../protocol/reference-server/index.js';
import { FakeAgent, HttpRefusal, makeHello } from '../support/fake-agent.js';
import { eventually } from '../support/eventually.js';

const TOKEN = 'test-token-1234';
const TIME = '2026-11-22T14:30:05.120Z';

type EventBody =
  | { kind: 'state'; state: 'running' | 'preparing' }
  | {
      kind: 'log';
      stream: 'stdout' | 'stderr' | 'system';
      level: 'info';
      lines: string[];
      partial?: boolean;
    }
  | { kind: 'artifact'; name: string; path: string; size: number; sha256: string }
  | { kind: 'result'; outcome: 'success' | 'failure'; exitCode: number; durationMs: number };

function event(taskId: string, seq: number, body: EventBody): AgentMessage {
  return { type: 'event', taskId, seq, time: TIME, ...body };
}

const log = (...lines: string[]): EventBody => ({
  kind: 'log',
  stream: 'stdout',
  level: 'info',
  lines,
});
const success: EventBody = { kind: 'result', outcome: 'success', exitCode: 0, durationMs: 5 };
const sha256Of = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

function task(taskId: string) {
  return { taskId, name: `task ${taskId}`, script: { syntax: 'bash' as const, body: 'echo hi' } };
}

/**
 * Reads acks of `taskId` until one covers `seq`, and returns their seqs. Acks are cumulative: the
 * server may answer a burst of events with one.
 */
async function ackedThrough(agent: FakeAgent, taskId: string, seq: number): Promise<number[]> {
  const seqs: number[] = [];
  for (;;) {
    const ack = await agent.next('ack');
    assert.equal(ack.taskId, taskId);
    assert.ok(
      ack.seq >= (seqs.at(-1) ?? 0),
      `acks never go back: ${[...seqs, ack.seq].join(', ')}`,
    );
    seqs.push(ack.seq);
    if (ack.seq >= seq) return seqs;
  }
}

describe('ReferenceServer (against a raw ws fake agent)', function () {
  this.timeout(15_000);

  let dir: string;
  let server: ReferenceServer;
  const agents: FakeAgent[] = [];
  const serverErrors: CuttleError[] = [];

  async function start(options: Partial<ReferenceServerOptions> = {}): Promise<ReferenceServer> {
    const started = new ReferenceServer({ token: TOKEN, dataDir: join(dir, 'data'), ...options });
    started.on('server-error', (error) => serverErrors.push(error));
    await started.listen();
    return started;
  }

  async function joinAgent(
    hello = makeHello(),
    options: { blobDir?: string } = {},
  ): Promise<{ agent: FakeAgent; welcome: Awaited<ReturnType<typeof FakeAgent.join>>['welcome'] }> {
    const joined = await FakeAgent.join(server.url, { token: TOKEN, hello, ...options });
    agents.push(joined.agent);
    return joined;
  }

  /** `token: null` sends no Authorization header. */
  async function connect(token: string | null = TOKEN, protocols?: string[]): Promise<FakeAgent> {
    const agent = await FakeAgent.connect(server.url, {
      token: token ?? undefined,
      ...(protocols === undefined ? {} : { protocols }),
    });
    agents.push(agent);
    return agent;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-reference-server-'));
    serverErrors.length = 0;
    server = await start();
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.terminate();
    await server.close();
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(
      serverErrors.map((error) => error.message),
      [],
      'the server reported failures of its own',
    );
  });

  describe('upgrade', () => {
    it('answers a missing or wrong token with HTTP 401 and no upgrade', async () => {
      let connections = 0;
      server.on('connection', () => connections++);
      for (const token of [null, 'wrong-token', `${TOKEN}x`, '']) {
        await assert.rejects(connect(token), (error: unknown) => {
          assert.ok(error instanceof HttpRefusal, String(error));
          assert.equal(error.status, 401);
          return true;
        });
      }
      assert.equal(connections, 0);
      await connect();
      assert.equal(connections, 1);
    });

    it('requires the cuttle.v1 subprotocol', async () => {
      await assert.rejects(connect(TOKEN, ['other.v1']), (error: unknown) => {
        assert.ok(error instanceof HttpRefusal);
        assert.equal(error.status, 400);
        return true;
      });
    });
  });

  describe('handshake', () => {
    it('answers hello with welcome and reports the agent', async () => {
      const hellos: string[] = [];
      server.on('hello', (hello) => hellos.push(hello.agent.id));
      const { welcome } = await joinAgent(makeHello({ id: 'w-7', capacity: 2 }));
      assert.match(welcome.sessionId, /^s-/);
      assert.equal(welcome.heartbeatMs, 15000);
      assert.deepEqual(welcome.resume, []);
      assert.deepEqual(hellos, ['w-7']);
      const [info] = server.connectedAgents();
      assert.equal(info?.agentId, 'w-7');
      assert.equal(info?.capacity, 2);
      assert.equal(info?.sessionId, welcome.sessionId);
    });

    it('closes a hello of another protocol version with 4001 naming the versions it speaks', async () => {
      const agent = await connect();
      // A future hello need not fit v1's schema: the version is checked first.
      await agent.sendRaw(JSON.stringify({ type: 'hello', protocol: 2, somethingNew: true }));
      const closed = await agent.closed;
      assert.equal(closed.code, 4001);
      assert.match(closed.reason, /speaks 1/);
      assert.deepEqual(server.connectedAgents(), []);
    });

    it('closes the older of two connections with the same agent id with 4009', async () => {
      const first = await joinAgent();
      const second = await joinAgent();
      assert.equal((await first.agent.closed).code, 4009);
      assert.equal(server.connectedAgents().length, 1);
      assert.equal(server.connectedAgents()[0]?.sessionId, second.welcome.sessionId);
      // The newer connection works: a task goes to it.
      server.submit(task('T-1'));
      assert.equal((await second.agent.next('task')).taskId, 'T-1');
    });

    it('answers a first message that is not hello with error and closes', async () => {
      const agent = await connect();
      await agent.send({ type: 'accepted', taskId: 'T-1' });
      const error = await agent.next('error');
      assert.equal(error.code, 'invalid-message');
      assert.match(error.message, /first message must be hello/);
      assert.equal((await agent.closed).code, 1008);
    });
  });

  describe('tasks', () => {
    it('queues tasks submitted with no agent and pushes them on hello; resolves accepted', async () => {
      const queued = server.submit(task('T-1'));
      assert.equal(queued.status, 'pending');
      const { agent } = await joinAgent();
      const pushed = await agent.next('task');
      assert.equal(pushed.taskId, 'T-1');
      assert.equal(pushed.script.body, 'echo hi');
      assert.equal(queued.status, 'pushed');
      await agent.sendMessage({ type: 'accepted', taskId: 'T-1' });
      assert.deepEqual(await queued.accepted, { type: 'accepted', taskId: 'T-1' });
      assert.equal(queued.status, 'accepted');

      const live = server.submit(task('T-2'));
      assert.equal((await agent.next('task')).taskId, 'T-2');
      await agent.sendMessage({
        type: 'rejected',
        taskId: 'T-2',
        code: 'invalid-task',
        message: 'no',
      });
      const answer = await live.accepted;
      assert.equal(answer.type, 'rejected');
      assert.equal(live.status, 'rejected');
    });

    it('gives a task a draining agent rejected to another agent, and the draining one no more', async () => {
      const { agent: draining } = await joinAgent();
      const first = server.submit(task('T-1'));
      assert.equal((await draining.next('task')).taskId, 'T-1');
      await draining.sendMessage({
        type: 'rejected',
        taskId: 'T-1',
        code: 'draining',
        message: 'no',
      });
      await eventually(() => first.status === 'pending', 'the task to wait again');
      const second = server.submit(task('T-2'));
      const { agent: other } = await joinAgent(makeHello({ id: 'other-agent' }));
      const pushed = [(await other.next('task')).taskId, (await other.next('task')).taskId];
      assert.deepEqual(pushed.sort(), ['T-1', 'T-2']);
      await other.sendMessage({ type: 'accepted', taskId: 'T-1' });
      assert.deepEqual(await first.accepted, { type: 'accepted', taskId: 'T-1' });
      assert.equal(second.status, 'pushed');
    });

    it('validates submitted tasks and refuses duplicates', () => {
      assert.throws(
        () => server.submit({ taskId: 'bad id', script: { syntax: 'bash', body: '' } }),
        (error: unknown) => error instanceof CuttleError && error.code === 'invalid-task',
      );
      assert.throws(
        () =>
          server.submit({
            taskId: 'T-1',
            script: { syntax: 'bash', body: '' },
            container: { image: 'a', dockerfile: 'FROM a' },
          }),
        /exactly one of image, dockerfile, git/,
      );
      server.submit(task('T-1'));
      assert.throws(() => server.submit(task('T-1')), /already submitted/);
    });

    it('pushes no more tasks than an agent has capacity, and the next when one ends', async () => {
      const { agent } = await joinAgent(makeHello({ capacity: 1 }));
      server.submit(task('T-1'));
      server.submit(task('T-2'));
      assert.equal((await agent.next('task')).taskId, 'T-1');
      assert.ok(await agent.nothing('task', 200));
      await agent.sendMessage({ type: 'accepted', taskId: 'T-1' });
      await agent.sendMessage(event('T-1', 1, success));
      assert.equal((await agent.next('task')).taskId, 'T-2');
    });

    it('sends cancel for a pushed task and drops a pending one', async () => {
      const pending = server.submit(task('T-0'));
      server.cancel('T-0');
      assert.equal(pending.status, 'cancelled');
      const { agent } = await joinAgent();
      assert.ok(await agent.nothing('task', 100));
      server.submit(task('T-1'));
      await agent.next('task');
      server.cancel('T-1');
      assert.equal((await agent.next('cancel')).taskId, 'T-1');
      assert.throws(() => server.cancel('nope'), /unknown task/);
    });

    it('drain resolves when the agent answers drained, and stops pushing to it', async () => {
      const { agent } = await joinAgent();
      let drained = false;
      const draining = server.drain().then(() => (drained = true));
      await agent.next('drain');
      server.submit(task('T-1'));
      assert.ok(await agent.nothing('task', 100));
      assert.equal(drained, false);
      await agent.sendMessage({ type: 'drained' });
      await draining;
      assert.equal(drained, true);
    });
  });

  describe('events', () => {
    async function running(taskId = 'T-1'): Promise<FakeAgent> {
      const { agent } = await joinAgent();
      server.submit(task(taskId));
      await agent.next('task');
      await agent.sendMessage({ type: 'accepted', taskId });
      return agent;
    }

    it('stores events in order, acknowledges them, and persists them to events.jsonl', async () => {
      const agent = await running();
      const handle = server.task('T-1');
      assert.ok(handle);
      const seen: number[] = [];
      handle.on('event', (stored) => seen.push(stored.seq));
      await agent.sendMessage(event('T-1', 1, { kind: 'state', state: 'running' }));
      await agent.sendMessage(event('T-1', 2, log('hello', 'world')));
      await agent.sendMessage(event('T-1', 3, success));
      assert.equal((await ackedThrough(agent, 'T-1', 3)).at(-1), 3);
      const result = await handle.result;
      assert.equal(result.outcome, 'success');
      assert.deepEqual(seen, [1, 2, 3]);
      assert.equal(handle.status, 'finished');
      assert.deepEqual(handle.logLines(), ['hello', 'world']);
      const lines = (await readFile(join(dir, 'data', 'tasks', 'T-1', 'events.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line): unknown => JSON.parse(line));
      assert.deepEqual(lines, handle.events);
      assert.equal(lines.length, 3);
      const saved: unknown = JSON.parse(
        await readFile(join(dir, 'data', 'tasks', 'T-1', 'task.json'), 'utf8'),
      );
      assert.ok(typeof saved === 'object' && saved !== null && 'status' in saved);
      assert.equal(saved.status, 'finished');
    });

    it('reads its events back from events.jsonl after a restart, past a torn last line', async () => {
      const agent = await running();
      await agent.sendMessage(event('T-1', 1, { kind: 'state', state: 'running' }));
      await agent.sendMessage(event('T-1', 2, log('before')));
      await ackedThrough(agent, 'T-1', 2);
      agent.terminate();
      await server.close();
      const path = join(dir, 'data', 'tasks', 'T-1', 'events.jsonl');
      await appendFile(path, '{"type":"event","taskId":"T-1","seq":3,"ki'); // a crash mid-append
      server = await start();
      const restarted = server.task('T-1');
      assert.equal(restarted?.summary().lastSeq, 2);
      const { agent: again } = await joinAgent(
        makeHello({ tasks: [{ taskId: 'T-1', lastSeq: 3, finished: true }] }),
      );
      await again.sendMessage(event('T-1', 3, log('after')));
      await again.sendMessage(event('T-1', 4, success));
      assert.equal((await restarted?.result)?.outcome, 'success');
      assert.deepEqual(restarted?.logLines(), ['before', 'after']);
      await server.close();
      server = await start();
      assert.deepEqual(
        server.task('T-1')?.events.map((stored) => stored.seq),
        [1, 2, 3, 4],
        'the torn line was cut off, not left in front of the events stored after it',
      );
    });

    it('ignores a duplicate seq but acks it again', async () => {
      const agent = await running();
      await agent.sendMessage(event('T-1', 1, log('one')));
      await agent.sendMessage(event('T-1', 2, log('two')));
      await ackedThrough(agent, 'T-1', 2);
      await agent.sendMessage(event('T-1', 1, log('one again')));
      assert.deepEqual(await agent.next('ack'), { type: 'ack', taskId: 'T-1', seq: 2 });
      assert.deepEqual(server.task('T-1')?.logLines(), ['one', 'two']);
    });

    it('refuses a gap with invalid-message and does not ack past it', async () => {
      const agent = await running();
      await agent.sendMessage(event('T-1', 1, log('one')));
      assert.equal((await agent.next('ack')).seq, 1);
      await agent.sendMessage(event('T-1', 3, log('three')));
      const error = await agent.next('error');
      assert.equal(error.code, 'invalid-message');
      assert.equal(error.ref, 'T-1');
      assert.match(error.message, /gap/);
      assert.ok(await agent.nothing('ack', 150));
      assert.equal(server.task('T-1')?.events.length, 1);
      // Filling the gap is accepted.
      await agent.sendMessage(event('T-1', 2, log('two')));
      await agent.sendMessage(event('T-1', 3, log('three')));
      await ackedThrough(agent, 'T-1', 3);
    });

    it('acknowledges a burst of events with few acks, at least one every 32 events', async () => {
      const agent = await running();
      const count = 200;
      // Sent without waiting, as an agent's outbox does within its window.
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          agent.sendMessage(event('T-1', i + 1, log(`l${i}`))),
        ),
      );
      const acks = await ackedThrough(agent, 'T-1', count);
      assert.ok(acks.length < count, `${acks.length} acks for ${count} events`);
      for (const [index, seq] of acks.entries()) {
        const previous = acks[index - 1] ?? 0;
        assert.ok(seq - previous <= 32, `ack ${seq} after ${previous}`);
      }
      assert.ok(await agent.nothing('ack', 100), 'no ack beyond the last event');
    });

    it('gathers events that arrive one at a time into one ack, and acks a result at once', async () => {
      await server.close();
      // A delay no test waits out: an ack that comes is one the server sent without it.
      server = await start({ ackDelayMs: 60_000 });
      const agent = await running();
      for (const seq of [1, 2, 3]) {
        await agent.sendMessage(event('T-1', seq, log(`l${seq}`)));
        // Each handled before the next arrives: the server's inbox is empty after every one.
        await eventually(() => server.task('T-1')?.events.length === seq, `event ${seq} stored`);
      }
      assert.ok(await agent.nothing('ack', 150), 'the acks wait for more events');
      await agent.sendMessage(event('T-1', 4, success));
      assert.deepEqual(await agent.next('ack'), { type: 'ack', taskId: 'T-1', seq: 4 });
    });

    it('acks once a quarter of the agent window of 8 MiB is stored, however few the events', async () => {
      await server.close();
      server = await start({ ackDelayMs: 60_000 });
      const agent = await running();
      // ~300 KB each, as a batch of escaped control characters makes: 2 MiB is crossed by the 7th.
      const big = (seq: number): AgentMessage =>
        event('T-1', seq, log(...['a', 'b', 'c'].map((c) => c.repeat(100_000))));
      for (const seq of [1, 2, 3, 4, 5, 6]) {
        await agent.sendMessage(big(seq));
        await eventually(() => server.task('T-1')?.events.length === seq, `event ${seq} stored`);
      }
      assert.ok(await agent.nothing('ack', 150), 'under 2 MiB the acks wait for more events');
      await agent.sendMessage(big(7));
      assert.deepEqual(await agent.next('ack'), { type: 'ack', taskId: 'T-1', seq: 7 });
    });

    it('refuses an ackDelayMs that is not a whole number of milliseconds up to a minute', () => {
      for (const ackDelayMs of [-1, 1.5, 60_001, Number.NaN]) {
        assert.throws(
          () => new ReferenceServer({ token: TOKEN, dataDir: join(dir, 'other'), ackDelayMs }),
          (error: unknown) => error instanceof CuttleError && error.code === 'config-invalid',
          String(ackDelayMs),
        );
      }
    });

    it('answers events of an unknown task and events after the result with an error', async () => {
      const agent = await running();
      await agent.sendMessage(event('T-404', 1, log('x')));
      assert.equal((await agent.next('error')).ref, 'T-404');
      await agent.sendMessage(event('T-1', 1, success));
      await agent.next('ack');
      await agent.sendMessage(event('T-1', 2, log('late')));
      assert.match((await agent.next('error')).message, /already ended/);
    });

    it('holds acks with autoAck off until ack() or setAutoAck(true)', async () => {
      server.setAutoAck(false);
      const agent = await running();
      for (const seq of [1, 2, 3]) await agent.sendMessage(event('T-1', seq, log(`l${seq}`)));
      await eventually(() => server.task('T-1')?.events.length === 3, 'three stored events');
      assert.ok(await agent.nothing('ack', 100));
      server.ack('T-1', 2);
      assert.equal((await agent.next('ack')).seq, 2);
      assert.throws(() => server.ack('T-1', 9), /only 3 events are stored/);
      server.setAutoAck(true);
      assert.equal((await agent.next('ack')).seq, 3);
    });

    it('drops the acks waiting out ackDelayMs when autoAck is turned off', async () => {
      await server.close();
      server = await start({ ackDelayMs: 200 });
      const agent = await running();
      await agent.sendMessage(event('T-1', 1, log('one')));
      await eventually(() => server.task('T-1')?.events.length === 1, 'the event stored');
      server.setAutoAck(false);
      assert.ok(await agent.nothing('ack', 400), 'no ack after autoAck was turned off');
      server.setAutoAck(true);
      assert.equal((await agent.next('ack')).seq, 1);
    });

    it('joins partial log pieces into one line', async () => {
      const agent = await running();
      const piece = (seq: number, text: string, partial: boolean) =>
        event('T-1', seq, {
          kind: 'log',
          stream: 'stderr',
          level: 'info',
          lines: [text],
          ...(partial ? { partial: true } : {}),
        });
      await agent.sendMessage(event('T-1', 1, log('before')));
      await agent.sendMessage(piece(2, 'aaa', true));
      await agent.sendMessage(piece(3, 'bbb', true));
      await agent.sendMessage(piece(4, 'ccc', false));
      await agent.sendMessage(event('T-1', 5, log('after', 'end')));
      await eventually(() => server.task('T-1')?.events.length === 5, 'five events');
      assert.deepEqual(server.task('T-1')?.logLines(), ['before', 'aaabbbccc', 'after', 'end']);
    });
  });

  describe('malformed input', () => {
    it('answers each bad frame with error and keeps the connection open', async () => {
      const errors: string[] = [];
      const { agent } = await joinAgent();
      const cases: [string, string][] = [
        ['{"type": "event", ', 'invalid-message'],
        ['[1,2,3]', 'invalid-message'],
        ['{"taskId":"T-1"}', 'invalid-message'],
        ['{"type":"teleport"}', 'unknown-type'],
        ['{"type":"event","taskId":"T-1","seq":"one"}', 'invalid-message'],
        [JSON.stringify(makeHello()), 'invalid-message'],
      ];
      for (const [frame, code] of cases) {
        await agent.sendRaw(frame);
        const error = await agent.next('error');
        assert.equal(error.code, code, frame);
        errors.push(error.message);
      }
      assert.match(errors[0] ?? '', /not valid JSON/);
      assert.match(errors[5] ?? '', /already received/);
      // Still open and still served.
      server.submit(task('T-1'));
      assert.equal((await agent.next('task')).taskId, 'T-1');
      assert.equal(server.connectedAgents().length, 1);
    });

    it('answers a message with 120,000 faults with an error that fits in a frame', async () => {
      const { agent } = await joinAgent();
      // 40,000 entries of three faults each (~520 KB): unbounded, the error was ~6 MB, which an
      // agent (frames up to 1 MiB) refuses by closing the connection.
      const frame = JSON.stringify({
        ...makeHello(),
        tasks: Array.from({ length: 40_000 }, () => ({ taskId: 1 })),
      });
      assert.ok(Buffer.byteLength(frame) < MAX_TEXT_FRAME_BYTES);
      await agent.sendRaw(frame);
      const error = await agent.next('error');
      assert.equal(error.code, 'invalid-message');
      assert.match(error.message, /^hello\.tasks\.0\.taskId: expected string/);
      assert.match(error.message, /and 119990 more issues$/);
      assert.ok(Buffer.byteLength(encodeMessage(error)) <= MAX_TEXT_FRAME_BYTES);
      // Still open and still served.
      server.submit(task('T-1'));
      assert.equal((await agent.next('task')).taskId, 'T-1');
    });

    it('lets tests send raw frames to the agent', async () => {
      const { agent } = await joinAgent();
      await server.sendRaw('{"type":"drain"}');
      await agent.next('drain');
      await server.sendRaw('not json');
      await eventually(() => agent.undecodable.includes('not json'), 'the raw frame');
    });
  });

  describe('blobs', () => {
    it('stores an artifact blob from the agent, then accepts its artifact event', async () => {
      const { agent } = await joinAgent();
      server.submit(task('T-1'));
      await agent.next('task');
      const content = Buffer.alloc(2.5 * 1024 * 1024, 'artifact ');
      const file = join(dir, 'report.txt');
      await writeFile(file, content);
      const { sha256, size } = await hashFile(file);
      assert.equal(sha256, sha256Of(content));
      const received = new Promise<string>((resolve) =>
        server.on('blob-received', (blob) => resolve(blob.path)),
      );
      await sendBlob({
        transfer: 1,
        path: file,
        sha256,
        size,
        sendText: (message) => agent.sendMessage(message),
        sendBinary: (frame) => agent.sendRaw(frame),
      });
      assert.equal(await received, server.artifactPath(sha256));
      assert.deepEqual(await readFile(server.artifactPath(sha256)), content);
      const artifact: EventBody = {
        kind: 'artifact',
        name: 'report.txt',
        path: '/w/report.txt',
        size,
        sha256,
      };
      await agent.sendMessage(event('T-1', 1, artifact));
      assert.equal((await agent.next('ack')).seq, 1);
    });

    it('answers a corrupt blob with blob-corrupt naming the transfer, and refuses its event', async () => {
      const { agent } = await joinAgent();
      server.submit(task('T-1'));
      await agent.next('task');
      const file = join(dir, 'report.txt');
      await writeFile(file, 'real content');
      const claimed = sha256Of('other content');
      await sendBlob({
        transfer: 7,
        path: file,
        sha256: claimed,
        size: 12,
        sendText: (message) => agent.sendMessage(message),
        sendBinary: (frame) => agent.sendRaw(frame),
      });
      const error = await agent.next('error');
      assert.equal(error.code, 'blob-corrupt');
      assert.equal(error.transfer, 7);
      const artifact: EventBody = {
        kind: 'artifact',
        name: 'r',
        path: '/w/r',
        size: 12,
        sha256: claimed,
      };
      await agent.sendMessage(event('T-1', 1, artifact));
      const refused = await agent.next('error');
      assert.equal(refused.ref, 'T-1');
      assert.match(refused.message, /not received/);
      assert.equal(server.task('T-1')?.events.length, 0);
      // Nothing half-written is left beside the artifacts.
      await assert.rejects(readFile(server.artifactPath(claimed)));
    });

    it('answers chunks of an unknown transfer with an error naming it', async () => {
      const { agent } = await joinAgent();
      await agent.sendRaw(Buffer.from([0, 0, 0, 9, 1, 2, 3]));
      const error = await agent.next('error');
      assert.equal(error.code, 'invalid-message');
      assert.equal(error.transfer, 9);
    });

    it('serves registered blobs on blob-request, in frames of at most 1 MiB, or blob-missing', async () => {
      const blobDir = join(dir, 'agent-cache');
      const { agent } = await joinAgent(makeHello(), { blobDir });
      const content = Buffer.alloc(2 * 1024 * 1024 + 100, 'package ');
      const { sha256, size } = await server.addBlob(content);
      assert.equal(sha256, sha256Of(content));
      assert.equal(size, content.byteLength);

      await agent.sendMessage({ type: 'blob-request', sha256 });
      const begin = await agent.next('blob-begin');
      assert.equal(begin.sha256, sha256);
      assert.equal(begin.size, size);
      const outcome = await agent.blobs.take(() => true, 'a blob', 5000);
      assert.ok('blob' in outcome, 'the blob arrived intact');
      assert.deepEqual(await readFile(join(blobDir, sha256)), content);
      assert.equal(agent.frames.length, 3);
      for (const frame of agent.frames) {
        assert.ok(frame.byteLength <= 1024 * 1024 + 4);
        assert.equal(decodeBlobFrame(frame).transfer, begin.transfer);
      }

      const unknown = sha256Of('never registered');
      await agent.sendMessage({ type: 'blob-request', sha256: unknown });
      assert.deepEqual(await agent.next('blob-missing'), { type: 'blob-missing', sha256: unknown });
    });

    it('lets the agent detect a blob that was corrupted on the server', async () => {
      const blobDir = join(dir, 'agent-cache');
      const { agent } = await joinAgent(makeHello(), { blobDir });
      const { sha256 } = await server.addBlob(Buffer.from('tool bundle bytes'));
      // Same length, other bytes: only the hash can tell.
      await writeFile(join(dir, 'data', 'blobs', sha256), 'tool bundle BYTES');
      await agent.sendMessage({ type: 'blob-request', sha256 });
      const outcome = await agent.blobs.take(() => true, 'a blob', 5000);
      assert.ok('error' in outcome);
      assert.ok(outcome.error instanceof BlobCorruptError);
      assert.equal(outcome.error.code, 'blob-corrupt');
      await assert.rejects(readFile(join(blobDir, sha256)));
      // Telling the server is harmless; it surfaces as an agent error.
      const agentErrors = new Promise<string | undefined>((resolve) =>
        server.on('agent-error', (message) => resolve(message.code)),
      );
      await agent.sendMessage({
        type: 'error',
        code: 'blob-corrupt',
        message: outcome.error.message,
        transfer: outcome.transfer,
      });
      assert.equal(await agentErrors, 'blob-corrupt');
    });
  });

  describe('BlobReceiver', () => {
    it('refuses unknown transfers and overlong blobs, and cleans up on abortAll', async () => {
      const receiver = new BlobReceiver();
      assert.throws(() => receiver.chunk(5, Buffer.from('x')), /unknown blob transfer 5/);
      const destination = join(dir, 'in', 'blob');
      receiver.begin(
        { type: 'blob-begin', transfer: 1, sha256: sha256Of('ab'), size: 2 },
        destination,
      );
      await receiver.chunk(1, Buffer.from('abc'));
      await assert.rejects(receiver.end(1), BlobCorruptError);
      receiver.begin(
        { type: 'blob-begin', transfer: 2, sha256: sha256Of('ab'), size: 2 },
        destination,
      );
      await receiver.chunk(2, Buffer.from('a'));
      await receiver.abortAll();
      assert.deepEqual(receiver.openTransfers, []);
      assert.deepEqual(await readdir(join(dir, 'in')), []);
    });
  });

  describe('resume', () => {
    it('resumes from the first unstored seq and pushes again what never arrived', async () => {
      const first = await joinAgent();
      server.submit(task('T-1'));
      server.submit(task('T-2'));
      await first.agent.next('task');
      await first.agent.next('task');
      await first.agent.sendMessage({ type: 'accepted', taskId: 'T-1' });
      for (const seq of [1, 2, 3]) await first.agent.sendMessage(event('T-1', seq, log(`l${seq}`)));
      await ackedThrough(first.agent, 'T-1', 3);

      const gone = new Promise((resolve) => server.once('disconnect', resolve));
      server.disconnectAll();
      await gone;

      // The agent holds T-1 (it produced up to 5) and a task the server never heard of; T-2 it
      // never received.
      const hello = makeHello({
        tasks: [
          { taskId: 'T-1', lastSeq: 5, finished: false },
          { taskId: 'T-unknown', lastSeq: 2, finished: true },
        ],
      });
      const second = await joinAgent(hello);
      assert.deepEqual(second.welcome.resume, [{ taskId: 'T-1', fromSeq: 4 }]);
      assert.equal((await second.agent.next('task')).taskId, 'T-2');
      await second.agent.sendMessage(event('T-1', 4, log('l4')));
      await second.agent.sendMessage(event('T-1', 5, success));
      assert.equal((await ackedThrough(second.agent, 'T-1', 5)).at(-1), 5);
      assert.deepEqual(server.task('T-1')?.logLines(), ['l1', 'l2', 'l3', 'l4']);
    });

    it('marks lost a task that ran but that the agent no longer holds', async () => {
      const first = await joinAgent();
      const handle = server.submit(task('T-1'));
      await first.agent.next('task');
      await first.agent.sendMessage({ type: 'accepted', taskId: 'T-1' });
      await first.agent.sendMessage(event('T-1', 1, log('started')));
      await first.agent.next('ack');
      first.agent.terminate();
      const second = await joinAgent(makeHello({ tasks: [] }));
      assert.deepEqual(second.welcome.resume, []);
      assert.ok(await second.agent.nothing('task', 100), 'not pushed again under used seqs');
      assert.equal(handle.status, 'lost');
    });

    it('terminates an agent silent for 2 x heartbeatMs', async () => {
      await server.close();
      server = await start({ heartbeatMs: 150 });
      const { agent, welcome } = await joinAgent();
      assert.equal(welcome.heartbeatMs, 150);
      const startedAt = Date.now();
      const gone = new Promise<number>((resolve) =>
        server.once('disconnect', (info) => resolve(info.code)),
      );
      // A paused client reads nothing, pongs included (and not the server's close either).
      agent.pause();
      assert.equal(await gone, 1006);
      const elapsed = Date.now() - startedAt;
      assert.ok(elapsed >= 250 && elapsed < 1500, `dropped after ${elapsed} ms`);
      assert.deepEqual(server.connectedAgents(), []);
    });

    it('reloads tasks and events from dataDir after a restart', async () => {
      const { agent } = await joinAgent();
      server.submit(task('T-1'));
      await agent.next('task');
      await agent.sendMessage({ type: 'accepted', taskId: 'T-1' });
      await agent.sendMessage(event('T-1', 1, log('kept')));
      await agent.next('ack');
      await server.close();
      agent.terminate();

      server = await start();
      const restored = server.task('T-1');
      assert.equal(restored?.status, 'accepted');
      assert.deepEqual(restored?.logLines(), ['kept']);
      const again = await joinAgent(
        makeHello({ tasks: [{ taskId: 'T-1', lastSeq: 1, finished: false }] }),
      );
      assert.deepEqual(again.welcome.resume, [{ taskId: 'T-1', fromSeq: 2 }]);
    });
  });

  describe('HTTP API', () => {
    beforeEach(async () => {
      await server.close();
      server = await start({ httpApi: true });
    });

    const api = (path: string, init: RequestInit = {}, token = TOKEN) =>
      fetch(`${server.httpUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });

    it('refuses requests without the token', async () => {
      assert.equal((await api('/tasks', {}, 'wrong')).status, 401);
    });

    it('submits a task (generating its id), lists it, and follows its events to the result', async () => {
      const { agent } = await joinAgent();
      const bad = await api('/tasks', {
        method: 'POST',
        body: JSON.stringify({ script: { syntax: 'zsh' } }),
      });
      assert.equal(bad.status, 400);
      const problem: unknown = await bad.json();
      assert.ok(
        typeof problem === 'object' &&
          problem !== null &&
          'code' in problem &&
          'message' in problem,
      );
      assert.equal(problem.code, 'invalid-task');
      assert.match(String(problem.message), /syntax/);

      const created = await api('/tasks', {
        method: 'POST',
        body: JSON.stringify({ name: 'from http', script: { syntax: 'sh', body: 'true' } }),
      });
      assert.equal(created.status, 201);
      const body: unknown = await created.json();
      assert.ok(typeof body === 'object' && body !== null && 'taskId' in body);
      const taskId = String(body.taskId);
      assert.equal((await agent.next('task')).taskId, taskId);

      await agent.sendMessage(event(taskId, 1, log('first')));
      await agent.next('ack');
      const following = api(`/tasks/${taskId}/events?follow=1`).then((response) => response.text());
      await delay(50);
      await agent.sendMessage(event(taskId, 2, log('second')));
      await agent.sendMessage(event(taskId, 3, success));
      const streamed = (await following)
        .trim()
        .split('\n')
        .map((line): unknown => JSON.parse(line));
      const events: readonly TaskEvent[] = server.task(taskId)?.events ?? [];
      assert.deepEqual(streamed, events);
      assert.equal(streamed.length, 3);

      const listed: unknown = await (await api('/tasks')).json();
      assert.ok(Array.isArray(listed));
      assert.deepEqual(
        listed.map((summary: unknown) =>
          typeof summary === 'object' &&
          summary !== null &&
          'status' in summary &&
          'outcome' in summary
            ? [summary.status, summary.outcome]
            : undefined,
        ),
        [['finished', 'success']],
      );
      assert.equal((await api('/tasks/nope/events')).status, 404);
    });

    it('serves stored artifacts', async () => {
      const { agent } = await joinAgent();
      const file = join(dir, 'a.bin');
      await writeFile(file, 'artifact bytes');
      const { sha256, size } = await hashFile(file);
      const received = new Promise((resolve) => server.once('blob-received', resolve));
      await sendBlob({
        transfer: 1,
        path: file,
        sha256,
        size,
        sendText: (message) => agent.sendMessage(message),
        sendBinary: (frame) => agent.sendRaw(frame),
      });
      await received;
      const response = await api(`/artifacts/${sha256}`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), 'artifact bytes');
      assert.equal((await api(`/artifacts/${sha256Of('none')}`)).status, 404);
    });
  });
});
