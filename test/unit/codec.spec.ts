import assert from 'node:assert/strict';
import {
  decodeAgentMessage,
  decodeBlobFrame,
  decodeServerMessage,
  encodeBlobFrame,
  encodeMessage,
  InvalidTaskError,
  parseTask,
} from '../../protocol/codec.js';
import {
  clipText,
  CuttleError,
  InvalidMessageError,
  MAX_ERROR_TEXT_CHARS,
} from '../../protocol/errors.js';
import type { AgentMessage, ServerMessage } from '../../protocol/messages.js';

const SHA = 'a'.repeat(64);
const TIME = '2026-11-22T14:30:05.120Z';

const validTask = {
  type: 'task',
  taskId: 'T-42',
  name: 'Deploy web',
  script: { syntax: 'bash', body: 'echo hello' },
  variables: [
    { name: 'Octopus.Action.Container.Options', value: '--memory 256m', sensitive: false },
    { name: 'DbPassword', value: 'hunter2', sensitive: true },
  ],
  container: {
    image: 'registry.example.com/tools:1.2',
    feed: { registry: 'registry.example.com', username: 'u', password: 'p' },
    pullPolicy: 'always',
  },
  packages: [{ name: 'web.1.0.3.tgz', sha256: SHA, size: 1048576 }],
  tool: {
    name: 'calamari',
    version: '28.1.0',
    libc: 'glibc',
    bundle: { sha256: SHA, size: 31457280 },
  },
  timeoutMs: 3600000,
};

const serverMessages: Record<string, unknown>[] = [
  {
    type: 'welcome',
    sessionId: 's-1',
    heartbeatMs: 15000,
    resume: [{ taskId: 'T-41', fromSeq: 3 }],
  },
  validTask,
  { type: 'cancel', taskId: 'T-42' },
  { type: 'ack', taskId: 'T-42', seq: 7 },
  { type: 'drain' },
  { type: 'error', code: 'blob-corrupt', message: 'bad', transfer: 3 },
  { type: 'blob-begin', transfer: 17, sha256: SHA, size: 10 },
  { type: 'blob-end', transfer: 17 },
  { type: 'blob-missing', sha256: SHA },
];

const envelope = { type: 'event', taskId: 'T-42', time: TIME };
const agentMessages: Record<string, unknown>[] = [
  {
    type: 'hello',
    protocol: 1,
    agent: { id: 'w-01', name: 'build-worker-01', version: '1.4.0' },
    capacity: 4,
    capabilities: {
      docker: {
        version: '20.10.24',
        apiVersion: '1.41',
        os: 'linux',
        arch: 'amd64',
        imageMounts: false,
      },
      hostExecution: true,
      shells: ['bash', 'sh'],
      tools: [{ name: 'calamari', version: '28.1.0' }],
    },
    tasks: [{ taskId: 'T-41', lastSeq: 118, finished: false }],
  },
  { type: 'accepted', taskId: 'T-42' },
  { type: 'rejected', taskId: 'T-42', code: 'invalid-task', message: 'container: give one' },
  { ...envelope, seq: 1, kind: 'state', state: 'preparing' },
  { ...envelope, seq: 2, kind: 'log', stream: 'stdout', level: 'info', lines: ['a', 'b'] },
  {
    ...envelope,
    seq: 3,
    kind: 'log',
    stream: 'stderr',
    level: 'error',
    lines: ['x'],
    partial: true,
  },
  { ...envelope, seq: 4, kind: 'progress', activity: 'pull', message: 'pulling', percent: 40 },
  { ...envelope, seq: 5, kind: 'variable', name: 'Out', value: 'v', sensitive: false },
  { ...envelope, seq: 6, kind: 'artifact', name: 'r.txt', path: '/w/r.txt', size: 3, sha256: SHA },
  {
    ...envelope,
    seq: 7,
    kind: 'result',
    outcome: 'error',
    exitCode: null,
    error: { code: 'image-not-found', message: 'no such image' },
    durationMs: 1200,
  },
  { type: 'error', code: 'invalid-message', message: 'task.taskId: required', ref: 'T-42' },
  { type: 'blob-begin', transfer: 1, sha256: SHA, size: 0 },
  { type: 'blob-end', transfer: 1 },
  { type: 'blob-request', sha256: SHA },
  { type: 'drained' },
];

function expectInvalid(
  decode: () => unknown,
  code: 'invalid-message' | 'unknown-type',
  ref?: string,
): InvalidMessageError {
  try {
    decode();
  } catch (error) {
    assert.ok(
      error instanceof InvalidMessageError,
      `expected InvalidMessageError, got ${String(error)}`,
    );
    assert.equal(error.code, code);
    assert.equal(error.ref, ref);
    return error;
  }
  assert.fail('expected the decoder to throw');
}

describe('codec', () => {
  describe('valid messages', () => {
    for (const message of serverMessages) {
      it(`decodes server message ${String(message.type)}`, () => {
        const decoded: ServerMessage = decodeServerMessage(JSON.stringify(message));
        assert.deepEqual(decoded, message);
        // What is encoded decodes back to the same message.
        assert.deepEqual(decodeServerMessage(encodeMessage(decoded)), decoded);
      });
    }
    for (const message of agentMessages) {
      const label =
        message.type === 'event'
          ? `event ${String(message.kind)} (seq ${String(message.seq)})`
          : String(message.type);
      it(`decodes agent message ${label}`, () => {
        const decoded: AgentMessage = decodeAgentMessage(JSON.stringify(message));
        assert.deepEqual(decoded, message);
        assert.deepEqual(decodeAgentMessage(encodeMessage(decoded)), decoded);
      });
    }

    it('fills in defaults', () => {
      const welcome = decodeServerMessage('{"type":"welcome","sessionId":"s"}');
      assert.deepEqual(welcome, {
        type: 'welcome',
        sessionId: 's',
        heartbeatMs: 15000,
        resume: [],
      });
      const task = decodeServerMessage(
        JSON.stringify({ type: 'task', taskId: 'T', script: { syntax: 'sh', body: '' } }),
      );
      assert.ok(task.type === 'task');
      assert.deepEqual(task.variables, []);
      assert.deepEqual(task.packages, []);
      assert.equal(task.name, '');
    });
  });

  describe('malformed frames', () => {
    it('refuses text that is not JSON', () => {
      const error = expectInvalid(() => decodeAgentMessage('{"type":'), 'invalid-message');
      assert.ok(error.cause instanceof SyntaxError);
      expectInvalid(() => decodeServerMessage('nope'), 'invalid-message');
    });

    it('refuses JSON that is not an object', () => {
      expectInvalid(() => decodeAgentMessage('[1,2]'), 'invalid-message');
      expectInvalid(() => decodeAgentMessage('null'), 'invalid-message');
      expectInvalid(() => decodeServerMessage('"hello"'), 'invalid-message');
    });

    it('refuses an object without a string type', () => {
      expectInvalid(() => decodeAgentMessage('{"taskId":"T-1"}'), 'invalid-message', 'T-1');
      expectInvalid(() => decodeServerMessage('{"type":7}'), 'invalid-message');
    });

    it('answers an unknown type with unknown-type', () => {
      expectInvalid(
        () => decodeAgentMessage('{"type":"frobnicate","taskId":"T-9"}'),
        'unknown-type',
        'T-9',
      );
      // Types of the other direction are unknown too.
      expectInvalid(() => decodeAgentMessage(JSON.stringify(validTask)), 'unknown-type', 'T-42');
      expectInvalid(() => decodeServerMessage('{"type":"hello"}'), 'unknown-type');
    });

    it('refuses a message that fails validation, naming the field', () => {
      const error = expectInvalid(
        () => decodeAgentMessage(JSON.stringify({ ...agentMessages[4], lines: 'not an array' })),
        'invalid-message',
        'T-42',
      );
      assert.match(error.message, /lines/);
      const notAllStrings = expectInvalid(
        () =>
          decodeAgentMessage(JSON.stringify({ ...agentMessages[4], lines: ['fine', 7, 'fine'] })),
        'invalid-message',
        'T-42',
      );
      assert.match(notAllStrings.message, /lines: expected an array of strings/);
      expectInvalid(
        () =>
          decodeAgentMessage(
            JSON.stringify({ ...envelope, seq: 0, kind: 'state', state: 'running' }),
          ),
        'invalid-message',
        'T-42',
      );
      expectInvalid(
        () => decodeAgentMessage(JSON.stringify({ ...envelope, seq: 1, kind: 'mystery' })),
        'invalid-message',
        'T-42',
      );
      expectInvalid(
        () => decodeServerMessage('{"type":"blob-begin","transfer":1,"sha256":"ABC","size":1}'),
        'invalid-message',
        '1',
      );
    });
  });

  describe('tasks', () => {
    it('turns an invalid task with a valid id into InvalidTaskError', () => {
      const bad = { ...validTask, container: { image: 'x', dockerfile: 'FROM x' } };
      try {
        decodeServerMessage(JSON.stringify(bad));
        assert.fail('expected InvalidTaskError');
      } catch (error) {
        assert.ok(error instanceof InvalidTaskError, String(error));
        assert.equal(error.code, 'invalid-task');
        assert.equal(error.taskId, 'T-42');
        assert.match(error.message, /exactly one of image, dockerfile, git/);
      }
    });

    it('answers a task without a usable taskId with invalid-message, never invalid-task', () => {
      for (const taskId of [undefined, '', 'has space', 'x'.repeat(129), 42]) {
        const error = expectInvalid(
          () => decodeServerMessage(JSON.stringify({ ...validTask, taskId })),
          'invalid-message',
        );
        assert.ok(!(error instanceof InvalidTaskError));
        assert.match(error.message, /taskId/);
      }
    });

    it('parseTask throws CuttleError invalid-task', () => {
      assert.throws(
        () => parseTask({ type: 'task', taskId: 'T-1', script: { syntax: 'zsh', body: '' } }),
        (error: unknown) =>
          error instanceof CuttleError &&
          error.code === 'invalid-task' &&
          /syntax/.test(error.message),
      );
      assert.equal(parseTask(validTask).taskId, 'T-42');
    });
  });

  describe('error text', () => {
    it('lists the first ten issues and counts the rest', () => {
      const variables = Array.from({ length: 40_000 }, () => ({ name: 1, value: '' }));
      try {
        decodeServerMessage(JSON.stringify({ ...validTask, variables }));
        assert.fail('expected InvalidTaskError');
      } catch (error) {
        assert.ok(error instanceof InvalidTaskError, String(error));
        const listed = error.message.split('; ');
        assert.equal(listed.length, 11);
        assert.equal(listed[0], 'task.variables.0.name: expected string, received number');
        assert.equal(listed[9], 'task.variables.9.name: expected string, received number');
        assert.equal(listed[10], 'and 39990 more issues');
      }
    });

    it('clips an unknown type and a ref that the message echoes', () => {
      const error = expectInvalid(
        () => decodeServerMessage(JSON.stringify({ type: 't'.repeat(500_000), taskId: 'x' })),
        'unknown-type',
        'x',
      );
      assert.ok(error.message.length < 200, `${error.message.length} characters`);
      expectInvalid(
        () => decodeServerMessage(JSON.stringify({ type: 'cancel', taskId: 'x'.repeat(500_000) })),
        'invalid-message',
        `${'x'.repeat(128)}… (499872 more characters)`,
      );
    });

    it('clipText cuts long text, saying how much, and never half a surrogate pair', () => {
      assert.equal(clipText('short'), 'short');
      const long = clipText('a'.repeat(MAX_ERROR_TEXT_CHARS + 5));
      assert.equal(long, `${'a'.repeat(MAX_ERROR_TEXT_CHARS)}… (5 more characters)`);
      // '😀' is two UTF-16 units: a cut after 3 units would keep a lone high surrogate.
      assert.equal(clipText('ab😀cd', 3), 'ab… (4 more characters)');
    });
  });

  describe('SHA-256', () => {
    // Mixed case: neither all upper nor all lower, so both transforms are told apart.
    const MIXED = '9C1e5D2b'.repeat(8);
    const LOWER = MIXED.toLowerCase();

    it('accepts upper-case hex digits in a task and lower-cases them', () => {
      const task = decodeServerMessage(
        JSON.stringify({
          ...validTask,
          packages: [{ name: 'web.tgz', sha256: MIXED, size: 1 }],
          tool: { name: 'calamari', version: '28.1.0', bundle: { sha256: MIXED, size: 1 } },
        }),
      );
      assert.ok(task.type === 'task');
      assert.equal(task.packages[0]?.sha256, LOWER);
      assert.equal(task.tool?.bundle.sha256, LOWER);
      assert.equal(
        parseTask({ ...validTask, packages: [{ name: 'p', sha256: MIXED, size: 1 }] }).packages[0]
          ?.sha256,
        LOWER,
      );
    });

    it('accepts upper-case hex digits in blob messages and lower-cases them', () => {
      const begin = decodeServerMessage(
        JSON.stringify({ type: 'blob-begin', transfer: 1, sha256: MIXED, size: 1 }),
      );
      assert.ok(begin.type === 'blob-begin');
      assert.equal(begin.sha256, LOWER);
      const missing = decodeServerMessage(JSON.stringify({ type: 'blob-missing', sha256: MIXED }));
      assert.ok(missing.type === 'blob-missing');
      assert.equal(missing.sha256, LOWER);
      const request = decodeAgentMessage(JSON.stringify({ type: 'blob-request', sha256: MIXED }));
      assert.ok(request.type === 'blob-request');
      assert.equal(request.sha256, LOWER);
      const artifact = decodeAgentMessage(
        JSON.stringify({
          ...envelope,
          seq: 6,
          kind: 'artifact',
          name: 'r',
          path: '/r',
          size: 1,
          sha256: MIXED,
        }),
      );
      assert.ok(artifact.type === 'event' && artifact.kind === 'artifact');
      assert.equal(artifact.sha256, LOWER);
    });

    it('still refuses what is not 64 hex digits', () => {
      for (const sha256 of ['G'.repeat(64), 'a'.repeat(63), 'a'.repeat(65)]) {
        expectInvalid(
          () => decodeServerMessage(JSON.stringify({ type: 'blob-missing', sha256 })),
          'invalid-message',
          sha256,
        );
      }
    });
  });

  it('strips unknown fields, at the top and nested', () => {
    const decoded = decodeAgentMessage(
      JSON.stringify({
        ...agentMessages[0],
        future: true,
        agent: { id: 'w-01', name: 'n', version: 'v', region: 'eu' },
      }),
    );
    assert.ok(decoded.type === 'hello');
    assert.ok(!('future' in decoded));
    assert.deepEqual(decoded.agent, { id: 'w-01', name: 'n', version: 'v' });
    const task = decodeServerMessage(JSON.stringify({ ...validTask, priority: 3 }));
    assert.ok(!('priority' in task));
  });

  describe('blob frames', () => {
    it('round-trips transfer number and data', () => {
      const data = Buffer.from('some bytes \u0000\u00ff');
      for (const transfer of [0, 1, 17, 0xffffffff]) {
        const frame = encodeBlobFrame(transfer, data);
        assert.equal(frame.byteLength, data.byteLength + 4);
        assert.equal(frame.readUInt32BE(0), transfer);
        const decoded = decodeBlobFrame(frame);
        assert.equal(decoded.transfer, transfer);
        assert.deepEqual(decoded.chunk, data);
      }
      assert.equal(decodeBlobFrame(encodeBlobFrame(3, Buffer.alloc(0))).chunk.byteLength, 0);
    });

    it('allows chunks up to 1 MiB and no more', () => {
      assert.equal(encodeBlobFrame(1, Buffer.alloc(1024 * 1024)).byteLength, 1024 * 1024 + 4);
      assert.throws(() => encodeBlobFrame(1, Buffer.alloc(1024 * 1024 + 1)), CuttleError);
    });

    it('refuses a frame shorter than its header', () => {
      expectInvalid(() => decodeBlobFrame(Buffer.from([0, 1, 2])), 'invalid-message');
    });
  });
});
