/**
 * Blob transfer (PROTOCOL.md section 6), shared by the agent and the server: a receiver that
 * streams incoming transfers to temp files and verifies them, and a sender that streams a file as
 * `blob-begin`, binary frames and `blob-end`. Neither side ever holds a whole blob in memory.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { BlobCorruptError, CuttleError, InvalidMessageError } from './errors.js';
import { MAX_BLOB_CHUNK_BYTES, type BlobBegin, type BlobEnd } from './messages.js';

export interface ReceivedBlob {
  path: string;
  sha256: string;
  size: number;
}

interface OpenTransfer {
  readonly begin: BlobBegin;
  readonly destinationPath: string;
  readonly tempPath: string;
  readonly stream: Writable;
  readonly hash: Hash;
  received: number;
  failure: Error | undefined;
}

/**
 * Bytes of a transfer written ahead of the disk before chunk() makes the sender wait. With the
 * stream's default (16 KiB) every 1 MiB frame waited for its own write, so hashing and writing
 * took turns instead of overlapping.
 */
export const WRITE_AHEAD_BYTES = 8 * 1024 * 1024;

export interface BlobReceiverOptions {
  /**
   * Creates a transfer's temp file (which must not exist yet) and returns its stream. Default: a
   * file stream readable by its owner alone; tests pass a slow one to play a slow disk.
   */
  openFile?: (path: string) => Writable;
}

/** Tracks the incoming transfers of one connection; `abortAll` when that connection ends. */
export class BlobReceiver {
  readonly #open = new Map<number, OpenTransfer>();
  readonly #openFile: (path: string) => Writable;

  constructor(options: BlobReceiverOptions = {}) {
    this.#openFile = options.openFile ?? openTempFile;
  }

  /** Transfers begun and not yet ended or aborted. */
  get openTransfers(): number[] {
    return [...this.#open.keys()];
  }

  /**
   * Starts a transfer. The temp file sits beside `destinationPath`, so the final rename stays on
   * one file system and a half-written blob is never visible under its final name.
   */
  begin(message: BlobBegin, destinationPath: string): void {
    if (this.#open.has(message.transfer)) {
      throw new InvalidMessageError(
        'invalid-message',
        `blob transfer ${message.transfer} is already open`,
        String(message.transfer),
      );
    }
    // Synchronous so that chunks arriving right after `begin` always find their transfer.
    mkdirSync(dirname(destinationPath), { recursive: true });
    const tempPath = `${destinationPath}.${message.transfer}-${randomBytes(4).toString('hex')}.part`;
    const stream = this.#openFile(tempPath);
    const open: OpenTransfer = {
      begin: message,
      destinationPath,
      tempPath,
      stream,
      hash: createHash('sha256'),
      received: 0,
      failure: undefined,
    };
    stream.on('error', (error) => {
      open.failure = error;
    });
    this.#open.set(message.transfer, open);
  }

  /**
   * Writes one chunk. Resolves at once unless the file stream is above its high-water mark, in
   * which case it resolves when it drains: a caller that awaits it slows the sender down. The
   * chunk is written later, so it must not be reused meanwhile: a WebSocket gives each message a
   * buffer of its own, which is what this expects (copying here would double the allocations).
   */
  chunk(transfer: number, data: Uint8Array): Promise<void> {
    const open = this.#accept(transfer, data);
    if (open === undefined || open.stream.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        open.stream.off('drain', done);
        open.stream.off('close', done);
        resolve();
      };
      open.stream.on('drain', done);
      open.stream.on('close', done);
    });
  }

  /**
   * Writes one chunk like chunk(), but resolves only once the chunk has left memory: written to
   * the file, or dropped (past the announced size, a failed or aborted transfer); never rejects.
   * A caller that stops reading while too many of these are pending bounds its memory over all
   * its transfers, which the file streams' high-water marks, one per transfer, do not.
   */
  chunkWritten(transfer: number, data: Uint8Array): Promise<void> {
    const open = this.#accept(transfer, data);
    if (open === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      // Called on failure too; the transfer's own 'error' listener records the failure.
      open.stream.write(data, () => resolve());
    });
  }

  /** Counts and hashes a chunk: the transfer to write it to, or undefined to drop it. */
  #accept(transfer: number, data: Uint8Array): OpenTransfer | undefined {
    const open = this.#get(transfer);
    open.received += data.byteLength;
    // Past the announced size the blob is corrupt whatever follows: stop writing, report at end.
    if (open.received > open.begin.size || open.failure !== undefined) return undefined;
    open.hash.update(data);
    return open;
  }

  /**
   * Ends a transfer: checks size and SHA-256 and renames the file into place, or removes it and
   * rejects with BlobCorruptError.
   */
  async end(transfer: number): Promise<ReceivedBlob> {
    const open = this.#get(transfer);
    this.#open.delete(transfer);
    await closeStream(open.stream);
    const { begin } = open;
    if (open.failure !== undefined) {
      await removeQuietly(open.tempPath);
      throw new CuttleError('internal', `blob transfer ${transfer} could not be written`, {
        cause: open.failure,
      });
    }
    const sha256 = open.received > begin.size ? '' : open.hash.digest('hex');
    if (open.received !== begin.size || sha256 !== begin.sha256) {
      await removeQuietly(open.tempPath);
      throw new BlobCorruptError(
        `blob transfer ${transfer}: expected ${begin.size} bytes with SHA-256 ${begin.sha256}, ` +
          `received ${open.received} bytes` +
          (sha256 === '' ? '' : ` with SHA-256 ${sha256}`),
      );
    }
    try {
      await rename(open.tempPath, open.destinationPath);
    } catch (error) {
      await removeQuietly(open.tempPath);
      throw new CuttleError('internal', `blob transfer ${transfer} could not be stored`, {
        cause: error,
      });
    }
    return { path: open.destinationPath, sha256, size: begin.size };
  }

  /**
   * Drops one transfer and its temp file. Unknown transfers are ignored. The transfer is forgotten
   * before this returns, so its number can be begun again at once; the promise waits for the file.
   */
  async abort(transfer: number): Promise<void> {
    const open = this.#open.get(transfer);
    if (open === undefined) return;
    this.#open.delete(transfer);
    open.stream.destroy();
    await closeStream(open.stream);
    await removeQuietly(open.tempPath);
  }

  /**
   * On disconnect: cut transfers are sent again from the start (section 6), so drop them all.
   * Like abort(), forgets them before it returns; never rejects.
   */
  async abortAll(): Promise<void> {
    await Promise.all([...this.#open.keys()].map((transfer) => this.abort(transfer)));
  }

  #get(transfer: number): OpenTransfer {
    const open = this.#open.get(transfer);
    if (open === undefined) {
      throw new InvalidMessageError(
        'invalid-message',
        `unknown blob transfer ${transfer}`,
        String(transfer),
      );
    }
    return open;
  }
}

function openTempFile(path: string): Writable {
  return createWriteStream(path, { flags: 'wx', mode: 0o600, highWaterMark: WRITE_AHEAD_BYTES });
}

function closeStream(stream: Writable): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise((resolve) => {
    // Errors were already recorded by the transfer's own listener; here we only wait for the fd.
    stream.once('close', () => resolve());
    if (!stream.writableEnded && !stream.destroyed) stream.end();
  });
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // Already gone, or never created: nothing left to clean up.
  }
}

export interface SendBlobOptions {
  transfer: number;
  path: string;
  /** What `blob-begin` announces; the receiver checks the content against it. */
  sha256: string;
  size: number;
  sendText: (message: BlobBegin | BlobEnd) => Promise<void>;
  /** May overwrite the frame's bytes (the agent masks them in place); resolves once it is sent. */
  sendBinary: (frame: Buffer) => Promise<void>;
}

/**
 * Streams a file as one transfer. Awaiting each send lets the transport's backpressure pace the
 * file reads. The content is sent as it is on disk: if it no longer matches `sha256`, the
 * receiver answers `blob-corrupt`.
 *
 * Two buffers serve every frame: the file is read straight after the 4-byte header, the next
 * frame's read overlapping the current frame's send (docs/performance.md). The header is written
 * again for each frame, since sending may have masked it in place.
 */
export async function sendBlob(options: SendBlobOptions): Promise<void> {
  const { transfer } = options;
  await options.sendText({
    type: 'blob-begin',
    transfer,
    sha256: options.sha256,
    size: options.size,
  });
  const frames: [Buffer, Buffer] = [
    Buffer.allocUnsafe(4 + MAX_BLOB_CHUNK_BYTES),
    Buffer.allocUnsafe(4 + MAX_BLOB_CHUNK_BYTES),
  ];
  await readAhead(options.path, frames, 4, (frame, bytesRead) => {
    frame.writeUInt32BE(transfer, 0);
    return options.sendBinary(frame.subarray(0, 4 + bytesRead));
  });
  await options.sendText({ type: 'blob-end', transfer });
}

/** SHA-256 (lower-case hex) and size of a file. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const buffers: [Buffer, Buffer] = [
    Buffer.allocUnsafe(HASH_READ_BYTES),
    Buffer.allocUnsafe(HASH_READ_BYTES),
  ];
  const size = await readAhead(path, buffers, 0, (buffer, bytesRead) => {
    hash.update(buffer.subarray(0, bytesRead));
  });
  return { sha256: hash.digest('hex'), size };
}

/**
 * Reads a whole file through two reused buffers, each read landing at `offset` in its buffer: the
 * next read runs on libuv's threads while `consume` handles the last one on this thread. Returns
 * the bytes read. Allocating a buffer per read made V8 run full collections every few dozen MiB.
 */
export async function readAhead(
  path: string,
  buffers: [Buffer, Buffer],
  offset: number,
  consume: (buffer: Buffer, bytesRead: number) => unknown,
): Promise<number> {
  let [current, spare] = buffers;
  const file = await open(path, 'r');
  const readInto = async (buffer: Buffer, position: number): Promise<number> =>
    (await file.read(buffer, offset, buffer.length - offset, position)).bytesRead;
  let size = 0;
  let reading = readInto(current, 0);
  try {
    for (;;) {
      const bytesRead = await reading;
      if (bytesRead === 0) break;
      size += bytesRead;
      const done = current;
      [current, spare] = [spare, current];
      reading = readInto(current, size);
      await consume(done, bytesRead);
    }
  } finally {
    await reading.catch(() => 0); // never close the file under a read
    await file.close();
  }
  return size;
}

const HASH_READ_BYTES = 4 * 1024 * 1024;
