/**
 * Turns a step's output into `log` events: masked, batched (a few hundred KiB per event, far below
 * the 1 MiB frame limit), and with lines over 128 KiB sent as `partial` pieces that nothing of the
 * same task interleaves (PROTOCOL.md section 4).
 */
import {
  MAX_LOG_LINE_BYTES,
  type EventBody,
  type LogLevel,
  type LogStream,
} from '../protocol/index.js';
import type { Masker } from './masker.js';
import type { TailSink } from './output-tail.js';

const BATCH_BYTES = 256 * 1024;
const BATCH_LINES = 2000;

export type AppendEvent = (body: EventBody) => Promise<void>;

/** Serializes a task's log writers, so a line sent in pieces is not interleaved by another stream. */
export class TaskLog {
  readonly #append: AppendEvent;
  readonly #masker: Masker;
  /** The stream writing now, or holding the log because it sent the start of a long line. */
  #holder: LogStream | undefined;
  #waiters: (() => void)[] = [];
  /** Held-back end of the last partial piece (see partial()). */
  #carry = '';
  /** A partial piece was sent and its line has not ended yet. */
  #lineOpen = false;

  constructor(append: AppendEvent, masker: Masker) {
    this.#append = append;
    this.#masker = masker;
  }

  /** The agent's own words about the step. */
  async system(level: LogLevel, ...lines: string[]): Promise<void> {
    await this.write('system', level, lines);
  }

  async write(stream: LogStream, level: LogLevel, lines: string[]): Promise<void> {
    await this.#acquire(stream);
    try {
      if (this.#lineOpen && lines.length > 0) {
        // The end of a line sent in pieces is an event of its own (section 4).
        const [end, ...rest] = lines;
        const last = this.#masker.mask(this.#carry + (end ?? ''));
        this.#carry = '';
        this.#lineOpen = false;
        const pieces = splitUtf8(last, MAX_LOG_LINE_BYTES);
        for (const [index, piece] of pieces.entries()) {
          const more = index < pieces.length - 1;
          await this.#append({
            kind: 'log',
            stream,
            level,
            lines: [piece],
            ...(more ? { partial: true } : {}),
          });
        }
        lines = rest;
      }
      await this.#writeLines(
        stream,
        level,
        lines.map((l) => this.#masker.mask(l)),
      );
    } finally {
      this.#releaseUnlessPartial(false);
    }
  }

  /**
   * The start of a long line: sent now, and the stream keeps the log until the line ends. The end
   * of each piece is held back until it cannot be the start of a secret, so a secret cut across
   * two reads is still masked whole.
   */
  async partial(stream: LogStream, level: LogLevel, piece: string): Promise<void> {
    await this.#acquire(stream);
    this.#lineOpen = true;
    const text = this.#carry + piece;
    const cut = this.#masker.safeCut(
      text,
      Math.max(0, text.length - Math.max(0, this.#masker.longest - 1)),
    );
    this.#carry = text.slice(cut);
    if (cut > 0) {
      for (const part of splitUtf8(this.#masker.mask(text.slice(0, cut)), MAX_LOG_LINE_BYTES)) {
        await this.#append({ kind: 'log', stream, level, lines: [part], partial: true });
      }
    }
    this.#releaseUnlessPartial(true);
  }

  /** A sink for OutputTail that writes one stream at a level chosen per batch. */
  sink(stream: LogStream, level: () => LogLevel): TailSink {
    return {
      lines: (lines) => this.write(stream, level(), lines),
      partial: (piece) => this.partial(stream, level(), piece),
    };
  }

  async #writeLines(stream: LogStream, level: LogLevel, lines: string[]): Promise<void> {
    let batch: string[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.#append({ kind: 'log', stream, level, lines: batch });
      batch = [];
      batchBytes = 0;
    };
    for (const line of lines) {
      const bytes = Buffer.byteLength(line, 'utf8');
      if (bytes > MAX_LOG_LINE_BYTES) {
        await flush();
        const pieces = splitUtf8(line, MAX_LOG_LINE_BYTES);
        for (const [index, piece] of pieces.entries()) {
          const partial = index < pieces.length - 1;
          await this.#append({
            kind: 'log',
            stream,
            level,
            lines: [piece],
            ...(partial ? { partial } : {}),
          });
        }
        continue;
      }
      if (batchBytes + bytes > BATCH_BYTES || batch.length >= BATCH_LINES) await flush();
      batch.push(line);
      batchBytes += bytes + 4;
    }
    await flush();
  }

  async #acquire(stream: LogStream): Promise<void> {
    while (this.#holder !== undefined && this.#holder !== stream) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    this.#holder = stream;
  }

  #releaseUnlessPartial(keep: boolean): void {
    if (keep) return;
    this.#holder = undefined;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Splits text into pieces of at most maxBytes of UTF-8, never inside a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(bytes.length, start + maxBytes);
    // Back off continuation bytes (10xxxxxx) so a character is never cut.
    while (end < bytes.length && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
    pieces.push(bytes.toString('utf8', start, end));
    start = end;
  }
  return pieces;
}
