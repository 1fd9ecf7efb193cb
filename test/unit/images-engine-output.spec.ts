import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { supportsImageMounts } from '../../images/docker-client.js';
import { engineMessageOf, isUnreachable, statusCodeOf } from '../../images/docker-errors.js';
import {
  LineSplitter,
  readEngineMessages,
  type EngineMessage,
} from '../../images/json-message-stream.js';
import { isStaticElf } from '../../images/static-elf.js';

describe('images: engine output and errors', function () {
  it('reads JSON messages split anywhere, even inside a multi-byte character', async function () {
    const bytes = Buffer.from(
      '{"stream":"caf\u00e9\\n"}\n{"error":"boom","errorDetail":{"message":"boom!"}}',
    );
    const chunks = [bytes.subarray(0, 12), bytes.subarray(12, 13), bytes.subarray(13)];
    const messages: EngineMessage[] = [];
    await readEngineMessages(Readable.from(chunks), (message) => messages.push(message));
    assert.deepEqual(messages, [
      { stream: 'caf\u00e9\n' },
      { error: 'boom', errorDetail: { message: 'boom!' } },
    ]);
  });

  it('joins stream fragments into whole lines', function () {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.push('Step 1/2 : FR');
    splitter.push('OM scratch\r\n ---> \nlast');
    splitter.end();
    assert.deepEqual(lines, ['Step 1/2 : FROM scratch', ' ---> ', 'last']);
  });

  it('tells an unreachable engine from an engine that answered', function () {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const answered = Object.assign(new Error('(HTTP code 404) no such container - No such x '), {
      statusCode: 404,
      json: { message: 'No such container: x' },
    });
    assert.equal(isUnreachable(refused), true);
    assert.equal(isUnreachable(answered), false);
    assert.equal(statusCodeOf(answered), 404);
    assert.equal(engineMessageOf(answered), 'No such container: x');
    assert.equal(engineMessageOf(new Error('(HTTP code 400) unexpected - bad line ')), 'bad line');
  });

  it('knows image mounts start at API 1.48', function () {
    assert.equal(supportsImageMounts('1.41'), false);
    assert.equal(supportsImageMounts('1.47'), false);
    assert.equal(supportsImageMounts('1.48'), true);
    assert.equal(supportsImageMounts('1.51'), true);
    assert.equal(supportsImageMounts('nonsense'), false);
  });

  it('detects a static ELF by the absence of PT_INTERP', function () {
    assert.equal(isStaticElf(readFileSync(process.execPath)), false, 'node is dynamically linked');
    assert.equal(isStaticElf(Buffer.from('#!/bin/sh\necho not elf\n'.repeat(8))), false);
    if (!existsSync('/bin/busybox')) this.skip();
    assert.equal(isStaticElf(readFileSync('/bin/busybox')), true);
  });
});
