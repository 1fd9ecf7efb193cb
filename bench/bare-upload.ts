/**
 * A reference upload: what PROTOCOL.md section 6 makes any blob upload do, without cuttle's
 * agent, server or messages. A sender that hashes the file first (the SHA-256 goes in `blob-begin`,
 * before any of the content), then sends it in masked 1 MiB binary frames over a loopback WebSocket
 * with `ws`'s own send (which masks into a copy of each frame; cuttle's agent masks in place),
 * reading the next piece while it sends the last (both with cuttle's own file readers, hashFile and
 * readAhead, so that reading is alike on both sides); a receiver that hashes and writes what
 * arrives, pausing the socket while its file is behind, and checks the hash at the end. Each side is a process of
 * its own, as the agent and the reference server are in the artifacts case. Left out: the 4-byte
 * transfer number of each frame, the journal, the events, validation.
 *
 *   bareUpload(path, scratchDir)                   from the bench: ms from the hash pass to stored
 *   node dist/bench/bare-upload.js receiver DIR    (forked; says its port over IPC)
 *   node dist/bench/bare-upload.js sender URL PATH (forked; says its time over IPC)
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import WebSocket, { WebSocketServer } from 'ws';
import { hashFile, readAhead, WRITE_AHEAD_BYTES } from '../protocol/blob-stream.js';
import { MAX_BLOB_CHUNK_BYTES as FRAME_BYTES } from '../protocol/messages.js';
import { rawDataToBuffer } from '../protocol/raw-data.js';
import { now, withTimeout } from './measure.js';

const SELF = fileURLToPath(import.meta.url);

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
  return v.parse(controlSchema, JSON.parse(rawDataToBuffer(data).toString('utf8')));
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
/** The first message of a forked child; its exit before that, or anything else, is an error. */
function firstMessage(child: ReturnType<typeof fork>): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`a bare-upload process exited (code ${code})`)));
    child.once('message', (raw) => {
      const parsed = v.safeParse(childSchema, raw);
      if (parsed.success) resolve(parsed.output);
      else reject(new Error(`a bare-upload process said ${JSON.stringify(raw)}`));
    });
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
        const chunk = rawDataToBuffer(data);
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
          // Removed before the answer, so that it is gone when the bench goes on.
          void unlink(path)
            .catch(() => undefined)
            .then(() =>
              ws.send(JSON.stringify({ type: 'stored', ok: hash.digest('hex') === sha256 })),
            );
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
  const stored = new Promise<Control>((resolve, reject) => {
    ws.once('message', (data) => resolve(control(data)));
    ws.once('close', () => reject(new Error('the bare receiver closed without answering')));
  });
  const write = (data: Buffer | string): Promise<void> =>
    new Promise((resolve, reject) => ws.send(data, (error) => (error ? reject(error) : resolve())));
  try {
    const start = now();
    const { sha256, size } = await hashFile(path);
    await write(JSON.stringify({ type: 'begin', size, sha256 }));
    await readAhead(
      path,
      [Buffer.allocUnsafe(FRAME_BYTES), Buffer.allocUnsafe(FRAME_BYTES)],
      0,
      (frame, bytesRead) => write(frame.subarray(0, bytesRead)),
    );
    await write(JSON.stringify({ type: 'end' }));
    const answer = await stored;
    const ms = now() - start;
    if (answer.type !== 'stored' || !answer.ok) {
      throw new Error('the bare receiver refused the upload');
    }
    process.send?.({ type: 'uploaded', ms });
  } finally {
    ws.close();
  }
}

if (process.argv[1] === SELF) {
  // A bench that ends (or dies) takes its children with it.
  process.on('disconnect', () => process.exit(0));
  const [role, first, second] = process.argv.slice(2);
  if (role === 'receiver' && first !== undefined) receive(first);
  else if (role === 'sender' && first !== undefined && second !== undefined) {
    send(first, second).catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  } else throw new Error('usage: bare-upload.js receiver DIR | sender URL PATH');
}
