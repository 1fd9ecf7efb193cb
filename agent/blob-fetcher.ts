/**
 * Fetches blobs the server holds (packages, tool bundles) into the package cache: `blob-request`,
 * then the server's `blob-begin` / binary frames / `blob-end`, verified by size and SHA-256. Two
 * tasks wanting the same blob share one transfer; a corrupt copy is asked for once more; a
 * transfer cut by a disconnect is asked for again after the next welcome (section 6).
 *
 * Frames go to disk as they arrive. While more than PAUSE_ABOVE_BYTES of them wait for the disk,
 * the connection stops reading, so a network faster than the disk slows the server down instead
 * of piling the blob up in memory (section 6: neither side holds a whole blob in memory).
 *
 * onMessage and onFrame run inside the socket's listener, where an exception would end the
 * process: they never throw.
 */
import {
  BlobCorruptError,
  BlobReceiver,
  CuttleError,
  WRITE_AHEAD_BYTES,
  type AgentConnection,
  type BlobBegin,
  type BlobEnd,
  type BlobMissing,
  type BlobReceiverOptions,
} from '../protocol/index.js';
import type { PackageCache } from '../workspace/index.js';

/** Received bytes not yet on disk, over all transfers, past which the connection stops reading. */
export const PAUSE_ABOVE_BYTES = WRITE_AHEAD_BYTES;
/** Reading resumes at half the bound: the disk keeps work queued while the network catches up. */
const RESUME_AT_BYTES = PAUSE_ABOVE_BYTES / 2;

interface Wanted {
  size: number;
  corruptCopies: number;
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: CuttleError) => void;
}

/** A transfer of the current connection that this fetcher accepted. */
interface Accepted {
  readonly sha256: string;
  /**
   * Known at blob-begin when it announces a size other than the task's: the copy cannot be the
   * blob, so its frames are dropped, and blob-end answers it as a failed verification.
   */
  readonly corrupt: BlobCorruptError | undefined;
}

export interface BlobFetcherOptions {
  /** How a transfer's temp file is opened (tests play a slow disk); see BlobReceiverOptions. */
  openFile?: BlobReceiverOptions['openFile'];
}

export class BlobFetcher {
  readonly #connection: AgentConnection;
  readonly #cache: PackageCache;
  readonly #receiver: BlobReceiver;
  readonly #wanted = new Map<string, Wanted>();
  /** By the server's transfer number. */
  readonly #transfers = new Map<number, Accepted>();
  /**
   * Counts disconnects. A verdict reached after one checks it: transfer numbers mean nothing on
   * the next connection, which may reuse them.
   */
  #generation = 0;
  /** Bytes received and not yet written (or dropped), over all transfers. */
  #queuedBytes = 0;
  /** Whether this fetcher paused the current connection. */
  #paused = false;

  constructor(connection: AgentConnection, cache: PackageCache, options: BlobFetcherOptions = {}) {
    this.#connection = connection;
    this.#cache = cache;
    this.#receiver = new BlobReceiver({ openFile: options.openFile });
  }

  /** Resolves once the blob is in the cache (at once if it already is). */
  fetch(sha256: string, size: number): Promise<void> {
    // Registered before anything is awaited: a second caller in the meantime must find it, or
    // two transfers would race for one entry and one caller would wait forever.
    const pending = this.#wanted.get(sha256);
    if (pending !== undefined) return pending.promise;
    let resolve!: () => void;
    let reject!: (error: CuttleError) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const wanted: Wanted = { size, corruptCopies: 0, promise, resolve, reject };
    this.#wanted.set(sha256, wanted);
    promise.then(
      () => this.#wanted.delete(sha256),
      () => this.#wanted.delete(sha256),
    );
    this.#cache.has(sha256).then(
      (cached) => (cached ? resolve() : this.#request(sha256)),
      () => this.#request(sha256),
    );
    return promise;
  }

  /** A new connection: ask again for everything still wanted. */
  onWelcome(): void {
    for (const sha256 of this.#wanted.keys()) this.#request(sha256);
  }

  /**
   * Drops the ended connection's open transfers now: the next connection may begin one under the
   * same number at once, and the server sends a cut transfer again from the start (section 6).
   * Transfers whose blob-end arrived are whole and are still verified and stored.
   */
  onDisconnect(): void {
    this.#generation += 1;
    this.#transfers.clear();
    // The paused socket is gone; the next one starts reading, and pauses when it must.
    this.#paused = false;
    // abortAll forgets every open transfer before it returns; only removing the files is later.
    void this.#receiver.abortAll();
  }

  onMessage(message: BlobBegin | BlobEnd | BlobMissing): void {
    switch (message.type) {
      case 'blob-begin': {
        const wanted = this.#wanted.get(message.sha256);
        if (wanted === undefined || this.#transfers.has(message.transfer)) return;
        if (message.size !== wanted.size) {
          // Verified at blob-end, as section 6 has it: a server expects its answer there.
          const corrupt = new BlobCorruptError(
            `blob transfer ${message.transfer}: announced ${message.size} bytes with SHA-256 ` +
              `${message.sha256}, which the task gives as ${wanted.size} bytes`,
          );
          this.#transfers.set(message.transfer, { sha256: message.sha256, corrupt });
          return;
        }
        try {
          this.#receiver.begin(message, this.#cache.pathOf(message.sha256));
        } catch (error) {
          // The cache folder cannot be made: this transfer's frames and blob-end are ignored.
          this.#fail(message.sha256, storeError(message.sha256, error));
          return;
        }
        this.#transfers.set(message.transfer, { sha256: message.sha256, corrupt: undefined });
        return;
      }
      case 'blob-end': {
        const accepted = this.#transfers.get(message.transfer);
        if (accepted === undefined) return;
        this.#transfers.delete(message.transfer);
        if (accepted.corrupt === undefined) {
          void this.#end(message.transfer, accepted.sha256, this.#generation);
        } else {
          this.#corrupt(message.transfer, accepted.sha256, accepted.corrupt, this.#generation);
        }
        return;
      }
      case 'blob-missing':
        this.#fail(
          message.sha256,
          new CuttleError(
            'blob-missing',
            `the server does not have the blob ${message.sha256} that the task names`,
          ),
        );
        return;
    }
  }

  onFrame(transfer: number, chunk: Buffer): void {
    const accepted = this.#transfers.get(transfer);
    // Not a transfer we asked for, or a copy that cannot be the blob: nothing to keep.
    if (accepted === undefined || accepted.corrupt !== undefined) return;
    let written: Promise<void>;
    try {
      written = this.#receiver.chunkWritten(transfer, chunk);
    } catch {
      // Unknown to the receiver, which #transfers mirrors: nothing to write it to.
      return;
    }
    const bytes = chunk.byteLength;
    this.#queuedBytes += bytes;
    if (!this.#paused && this.#queuedBytes > PAUSE_ABOVE_BYTES) {
      this.#paused = true;
      this.#connection.pauseReading();
    }
    void written.then(() => {
      this.#queuedBytes -= bytes;
      if (this.#paused && this.#queuedBytes <= RESUME_AT_BYTES) {
        this.#paused = false;
        this.#connection.resumeReading();
      }
    });
  }

  /** Never rejects: every failure fails the fetch or asks again. */
  async #end(transfer: number, sha256: string, generation: number): Promise<void> {
    try {
      await this.#receiver.end(transfer);
      await this.#cache.sealed(sha256);
      this.#wanted.get(sha256)?.resolve();
    } catch (error) {
      if (error instanceof BlobCorruptError) this.#corrupt(transfer, sha256, error, generation);
      else this.#fail(sha256, storeError(sha256, error));
    }
  }

  /** A copy failed verification: answer it (section 6), then ask once more or give up. */
  #corrupt(transfer: number, sha256: string, error: BlobCorruptError, generation: number): void {
    // The server's number names this transfer on its own connection only.
    if (generation === this.#generation) {
      this.#connection.send({
        type: 'error',
        code: 'blob-corrupt',
        message: error.message,
        transfer,
      });
    }
    const wanted = this.#wanted.get(sha256);
    if (wanted === undefined) return;
    wanted.corruptCopies += 1;
    if (wanted.corruptCopies < 2) {
      this.#request(sha256);
      return;
    }
    this.#fail(
      sha256,
      new CuttleError(
        'blob-corrupt',
        `two copies of blob ${sha256} arrived corrupt: ${error.message}`,
        { cause: error },
      ),
    );
  }

  #request(sha256: string): void {
    // Not connected: the next welcome asks again.
    this.#connection.send({ type: 'blob-request', sha256 });
  }

  #fail(sha256: string, error: CuttleError): void {
    this.#wanted.get(sha256)?.reject(error);
  }
}

function storeError(sha256: string, error: unknown): CuttleError {
  return new CuttleError(
    'workspace-error',
    `cannot store blob ${sha256}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
