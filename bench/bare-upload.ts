/**
 * The least a blob upload as PROTOCOL.md section 6 describes must do on this machine, without
 * cuttle: a sender that hashes the file first (the SHA-256 goes in `blob-begin`, before any of
 * the content), then sends it in masked 1 MiB binary frames over a loopback WebSocket, and a
 * receiver that hashes and writes what arrives, pausing the socket while its file is behind, and
 * checks the hash at the end. Each side is a process of its own, as the agent and the reference
 * server are in the artifacts case; nothing else (no journal, no events, no validation).
 *
 *   bareUpload(path)                              from the bench: milliseconds, begin to stored
 *   node dist/bench/bare-upload.js receiver DIR   (forked; says its port over IPC)
 *   node dist/bench/bare-upload.js sender URL PATH (forked; says its time over IPC)
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import WebSocket, { WebSocketServer } from 'ws';
import { now, withTimeout } from './measure.js';

const SELF = fileURLToPath(import.meta.url);
const FRAME_BYTES = 1024 * 1024;
const HASH_READ_BYTES = 4 * 1024 * 1024;
/** What the reference server lets its file stream hold before it pauses the sender. */
const WRITE_AHEAD_BYTES = 8 * 1024 * 1024;

const controlSchema = v.variant('type', [
  v.object({ type: v.literal('begin'), size: v.number(), sha256: v.string() }),
  v.object({ type: v.literal('end') }),
  v.object({ type: v.literal('stored'), ok: v.boolean() }),
]);
type Control = v.InferOutput<typeof controlSchema>;
const childSchema = v.variant('type', [
  v.object({ type: v.literal('port'), port: v.number() }),
  v.object({ type: v.literal('uploaded'), ms: v.number() }),
]);

function control(data: WebSocket.RawData): Control {
  return v.parse(controlSchema, JSON.parse(asBuffer(data).toString('utf8')));
}

function asBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** Uploads `path` through a fresh sender and receiver: milliseconds from the hash pass to stored. */
export async function bareUpload(path: string, scratchDir: string): Promise<number> {
  const receiver = fork(SELF, ['receiver', scratchDir], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const listening = await withTimeout(firstMessage(receiver), 10_000, 'the bare receiver');
    if (listening.type !== 'port') throw new Error('the bare receiver did not say its port');
    const sender = fork(SELF, ['sender', `ws://127.0.0.1:${listening.port}`, path], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const done = await withTimeout(firstMessage(sender), 120_000, 'the bare upload');
      if (done.type !== 'uploaded') throw new Error('the bare sender did not say its time');
      return done.ms;
    } finally {
      sender.kill();
    }
  } finally {
    receiver.kill();
  }
}

type ChildMessage = v.InferOutput<typeof childSchema>;
/** The first message of a forked child; its exit before that is an error. */
function firstMessage(child: ReturnType<typeof fork>): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`a bare-upload process exited (code ${code})`)));
    child.once('message', (raw) => resolve(v.parse(childSchema, raw)));
  });
}

function receive(scratchDir: string): void {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: FRAME_BYTES,
    perMessageDeflate: false,
  });
  wss.on('listening', () => {
    const address = wss.address();
    if (address === null || typeof address === 'string') throw new Error('not a TCP address');
    process.send?.({ type: 'port', port: address.port });
  });
  wss.on('connection', (ws) => {
    const path = join(scratchDir, `bare-upload-${process.pid}.bin`);
    let upload:
      | {
          sha256: string;
          hash: ReturnType<typeof createHash>;
          file: ReturnType<typeof createWriteStream>;
        }
      | undefined;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (upload === undefined) throw new Error('data before begin');
        const chunk = asBuffer(data);
        upload.hash.update(chunk);
        if (!upload.file.write(chunk)) {
          ws.pause();
          upload.file.once('drain', () => ws.resume());
        }
        return;
      }
      const message = control(data);
      if (message.type === 'begin') {
        upload = {
          sha256: message.sha256,
          hash: createHash('sha256'),
          file: createWriteStream(path, { highWaterMark: WRITE_AHEAD_BYTES }),
        };
      } else if (message.type === 'end' && upload !== undefined) {
        const { file, hash, sha256 } = upload;
        file.end(() => {
          ws.send(JSON.stringify({ type: 'stored', ok: hash.digest('hex') === sha256 }));
          void unlink(path).catch(() => undefined);
        });
      }
    });
  });
}

async function send(url: string, path: string): Promise<void> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const stored = new Promise<Control>((resolve) =>
    ws.once('message', (data) => resolve(control(data))),
  );
  const write = (data: Buffer | string): Promise<void> =>
    new Promise((resolve, reject) => ws.send(data, (error) => (error ? reject(error) : resolve())));
  const file = await open(path, 'r');
  const start = now();
  const hash = createHash('sha256');
  const hashBuffer = Buffer.allocUnsafe(HASH_READ_BYTES);
  let size = 0;
  for (;;) {
    const { bytesRead } = await file.read(hashBuffer, 0, hashBuffer.length, size);
    if (bytesRead === 0) break;
    hash.update(hashBuffer.subarray(0, bytesRead));
    size += bytesRead;
  }
  await write(JSON.stringify({ type: 'begin', size, sha256: hash.digest('hex') }));
  const frame = Buffer.allocUnsafe(FRAME_BYTES);
  for (let sent = 0; sent < size;) {
    const { bytesRead } = await file.read(frame, 0, frame.length, sent);
    await write(frame.subarray(0, bytesRead));
    sent += bytesRead;
  }
  await write(JSON.stringify({ type: 'end' }));
  const answer = await stored;
  const ms = now() - start;
  await file.close();
  if (answer.type !== 'stored' || !answer.ok)
    throw new Error('the bare receiver refused the upload');
  process.send?.({ type: 'uploaded', ms });
  ws.close();
}

if (process.argv[1] === SELF) {
  const [role, first, second] = process.argv.slice(2);
  if (role === 'receiver' && first !== undefined) receive(first);
  else if (role === 'sender' && first !== undefined && second !== undefined) {
    send(first, second).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  } else throw new Error('usage: bare-upload.js receiver DIR | sender URL PATH');
}
