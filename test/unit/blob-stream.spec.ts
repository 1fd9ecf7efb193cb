import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobReceiver, hashFile, sendBlob } from '../../protocol/blob-stream.js';
import { decodeBlobFrame } from '../../protocol/codec.js';

describe('blob streams', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-blob-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // Sizes around the read buffers (4 MiB for hashing, 1 MiB a frame), so every read-ahead path
  // runs: empty, one short read, exact multiples, and a partial last read.
  const sizes = [0, 1, 1024 * 1024, 4 * 1024 * 1024, 9 * 1024 * 1024 + 123];

  it('hashes files of any size as one pass of SHA-256 would', async () => {
    for (const size of sizes) {
      const path = join(dir, `f-${size}`);
      const content = randomBytes(size);
      await writeFile(path, content);
      assert.deepEqual(await hashFile(path), {
        sha256: createHash('sha256').update(content).digest('hex'),
        size,
      });
    }
  });

  it('sends a file as frames that a receiver puts back together, byte for byte', async () => {
    for (const size of sizes) {
      const path = join(dir, `s-${size}`);
      const content = randomBytes(size);
      await writeFile(path, content);
      const { sha256 } = await hashFile(path);
      const receiver = new BlobReceiver();
      const destination = join(dir, 'received', sha256);
      let frames = 0;
      await sendBlob({
        transfer: 7,
        path,
        sha256,
        size,
        sendText: async (message) => {
          if (message.type === 'blob-begin') receiver.begin(message, destination);
        },
        sendBinary: async (frame) => {
          frames += 1;
          const { transfer, chunk } = decodeBlobFrame(frame);
          assert.equal(transfer, 7);
          assert.ok(chunk.byteLength <= 1024 * 1024);
          // A copy, as a WebSocket delivers it: sendBlob reuses its frame buffers.
          await receiver.chunk(transfer, Buffer.from(chunk));
          // The agent's sender masks a frame in place, transfer number included: sendBlob must
          // not count on a buffer's bytes surviving a send.
          frame.fill(0xa5);
        },
      });
      const received = await receiver.end(7);
      assert.equal(received.size, size);
      assert.ok((await readFile(received.path)).equals(content), `${size} bytes arrive intact`);
      assert.equal(frames, Math.ceil(size / (1024 * 1024)));
    }
  });
});
