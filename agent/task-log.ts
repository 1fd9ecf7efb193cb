/**
 * Turns a step's output into `log` events: masked, batched (a few hundred KiB per event, far below
 * the 1 MiB frame limit), and with lines over 128 KiB sent as `partial` pieces that nothing of the
 * same task interleaves (PROTOCOL.md section 4).
 *
 * Each event of the step's output says how far into its output file it reaches (`Advance`), so
 * the journal can record, with the event, where a restarted agent resumes reading.
 */
import { MAX_LOG_LINE_BYTES, type LogLevel, type LogStream } from '../protocol/index.js';
import type { JournalInput } from '../workspace/index.js';
import type { Masker } from './masker.js';
import { linesOfText, type TailSink } from './output-tail.js';

/**
 * A batch of 64 K characters stays under the 1 MiB frame whatever they are: at most 3 bytes of
 * UTF-8 a character, or 6 when JSON escapes a control character (\u0001). It is also small enough
 * that its event's JSON text usually stays under 128 KiB, past which V8 makes every string a large
 * object, several times slower to make (docs/performance.md).
 */
const BATCH_CHARS = 64 * 1024;
const BATCH_LINES = 8000;
/**
 * A batch of at least this many characters goes to the journal joined, for its WebAssembly
 * encoder (protocol/lines-json.ts). Once compiled, that module keeps ~1.4 MiB of the node binary's
 * WebAssembly compiler resident for good; a step that prints a few lines at a time gains nothing
 * from it, so only busy output (a 64 KiB read cut into full batches) loads it.
 */
const JOINED_MIN_CHARS = 16 * 1024;

export type OutputStream = 'stdout' | 'stderr';

/** An event reaches `end` bytes into its stream's output file; `open`: a line is cut there. */
export interface Advance {
  stream: OutputStream;
  end: number;
  open: boolean;
}

export type AppendEvent = (body: JournalInput, advance?: Advance) => Promise<void>;

/** Serializes a task's log writers, so a line sent in pieces is not interleaved by another stream. */
export class TaskLog {
  readonly #append: AppendEvent;
  readonly #masker: Masker;
  /** The stream writing now, or holding the log because it sent the start of a long line. */
  #holder: LogStream | undefined;
  #waiters: (() => void)[] = [];
  /** Held-back end of the last partial piece (see partial()): not yet sent, not yet counted. */
  #carry = '';
  /** A partial piece was sent and its line has not ended yet. */
  #lineOpen = false;
  /** The level of the line left open, for its last piece should its stream send no more. */
  #openLevel: LogLevel = 'info';
  /** Where the open line's pieces sent so far end in its stream's output file. */
  #openEnd = 0;

  constructor(append: AppendEvent, masker: Masker) {
    this.#append = append;
    this.#masker = masker;
  }

  /** True while `stream` has sent the start of a line whose end is still to come. */
  lineOpen(stream: OutputStream): boolean {
    return this.#lineOpen && this.#holder === stream;
  }

  /** A restarted agent resumes in the middle of a long line of `stream`. */
  resumeOpenLine(stream: OutputStream, level: LogLevel, end: number): void {
    this.#holder = stream;
    this.#lineOpen = true;
    this.#openLevel = level;
    this.#openEnd = end;
  }

  /**
   * Ends a line left open by a stream that will send no more (its step ended without it being
   * read to the end, or reading failed): what was held back goes out as the line's last piece, and
   * the log is free again. Without it, every later writer (the agent's own lines about the failure)
   * would wait for that stream for good.
   */
  async endOpenLine(only?: OutputStream): Promise<void> {
    const stream = this.#holder;
    if (!this.#lineOpen || stream === undefined || stream === 'system') return;
    if (only !== undefined && stream !== only) return;
    const last = this.#masker.mask(this.#carry);
    this.#carry = '';
    this.#lineOpen = false;
    try {
      // Its checkpoint says the line is closed, so a restart does not wait for its end again.
      await this.#append(
        { kind: 'log', stream, level: this.#openLevel, lines: [last] },
        { stream, end: this.#openEnd, open: false },
      );
    } finally {
      this.#releaseUnlessPartial(false);
    }
  }

  /**
   * An event of the step's own making (an output variable, progress) from a line of `stream`:
   * it waits, like a line, for a long line of the other stream to end (section 4).
   */
  async event(stream: OutputStream, body: JournalInput, advance: Advance): Promise<void> {
    await this.#acquire(stream);
    try {
      await this.#append(body, advance);
    } finally {
      this.#releaseUnlessPartial(false);
    }
  }

  /** The agent's own words about the step. */
  async system(level: LogLevel, ...lines: string[]): Promise<void> {
    await this.write('system', level, lines);
  }

  /** Complete lines; `ends[i]` is where line i ends in its output file (none for system lines). */
  async write(stream: LogStream, level: LogLevel, lines: string[], ends?: number[]): Promise<void> {
    await this.#acquire(stream);
    try {
      let first = 0;
      if (this.#lineOpen && lines.length > 0 && stream !== 'system') {
        // The end of a line sent in pieces is an event (or events) of its own (section 4).
        const last = this.#masker.mask(this.#carry + (lines[0] ?? ''));
        this.#carry = '';
        this.#lineOpen = false;
        const pieces = splitUtf8(last, MAX_LOG_LINE_BYTES);
        for (const [index, piece] of pieces.entries()) {
          const more = index < pieces.length - 1;
          const end = ends?.[0];
          await this.#append(
            { kind: 'log', stream, level, lines: [piece], ...(more ? { partial: true } : {}) },
            end === undefined || more ? undefined : { stream, end, open: false },
          );
        }
        first = 1;
      }
      await this.#writeLines(stream, level, lines, ends, first);
    } finally {
      this.#releaseUnlessPartial(false);
    }
  }

  /**
   * The start of a long line, ending at `end` in its file: sent now, and the stream keeps the log
   * until the line ends. The end of each piece is held back until it cannot be the start of a
   * secret, so a secret cut across two reads is still masked whole.
   */
  async partial(stream: OutputStream, level: LogLevel, piece: string, end: number): Promise<void> {
    await this.#acquire(stream);
    this.#lineOpen = true;
    this.#openLevel = level;
    const text = this.#carry + piece;
    const cut = this.#masker.safeCut(
      text,
      Math.max(0, text.length - Math.max(0, this.#masker.longest - 1)),
    );
    this.#carry = text.slice(cut);
    if (cut > 0) {
      const parts = splitUtf8(this.#masker.mask(text.slice(0, cut)), MAX_LOG_LINE_BYTES);
      const reached = end - Buffer.byteLength(this.#carry);
      this.#openEnd = reached;
      for (const [index, part] of parts.entries()) {
        const advance =
          index === parts.length - 1 ? { stream, end: reached, open: true } : undefined;
        await this.#append({ kind: 'log', stream, level, lines: [part], partial: true }, advance);
      }
    }
    this.#releaseUnlessPartial(true);
  }

  /**
   * Whole lines as one text (see `TailSink.text`): cut into batches at line ends, each batch masked
   * and split in one call. What the fast path cannot take (the end of a line sent in pieces, a line
   * longer than a batch, masking that grew a batch past its size) goes line by line.
   */
  async writeText(stream: OutputStream, level: LogLevel, text: string, end: number): Promise<void> {
    if (this.lineOpen(stream)) {
      const { lines, ends } = linesOfText(text, end);
      await this.write(stream, level, lines, ends);
      return;
    }
    await this.#acquire(stream);
    try {
      // Where `text` starts in the file: it is ASCII, so characters are bytes.
      const origin = end - text.length - 1;
      let start = 0;
      while (start <= text.length) {
        let stop = text.length;
        if (stop - start > BATCH_CHARS) {
          stop = text.lastIndexOf('\n', start + BATCH_CHARS);
          if (stop < start) break; // one line longer than a batch
        }
        const batch = text.slice(start, stop);
        const masked = this.#masker.size > 0 ? this.#masker.maskLines(batch) : batch;
        if (masked.length > BATCH_CHARS) break;
        // Busy output is handed over joined: the journal encodes it without splitting it.
        await this.#append(
          masked.length >= JOINED_MIN_CHARS
            ? { kind: 'log-text', stream, level, text: masked }
            : { kind: 'log', stream, level, lines: masked.split('\n') },
          { stream, end: origin + stop + 1, open: false },
        );
        start = stop + 1;
      }
      if (start <= text.length) {
        const { lines, ends } = linesOfText(text.slice(start), end);
        await this.#writeLines(stream, level, lines, ends, 0);
      }
    } finally {
      this.#releaseUnlessPartial(false);
    }
  }

  /** A sink for OutputTail that writes one stream at a fixed level. */
  sink(stream: OutputStream, level: LogLevel): TailSink {
    return {
      lines: (lines, ends) => this.write(stream, level, lines, ends),
      text: (text, end) => this.writeText(stream, level, text, end),
      partial: (piece, end) => this.partial(stream, level, piece, end),
    };
  }

  async #writeLines(
    stream: LogStream,
    level: LogLevel,
    lines: string[],
    ends: number[] | undefined,
    first: number,
  ): Promise<void> {
    let batch: string[] = [];
    let batchBytes = 0;
    let batchEnd: number | undefined;
    const advance = (end: number | undefined): Advance | undefined =>
      end === undefined || stream === 'system' ? undefined : { stream, end, open: false };
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await this.#append({ kind: 'log', stream, level, lines: batch }, advance(batchEnd));
      batch = [];
      batchBytes = 0;
    };
    const masked = this.#masker.size > 0 ? lines.map((line) => this.#masker.mask(line)) : lines;
    for (let i = first; i < masked.length; i++) {
      const line = masked[i] ?? '';
      // Batches are sized in characters (see BATCH_CHARS); only a line that could exceed 128 KiB
      // is measured in bytes.
      const long =
        line.length > MAX_LOG_LINE_BYTES / 3 && Buffer.byteLength(line) > MAX_LOG_LINE_BYTES;
      if (long) {
        await flush();
        const pieces = splitUtf8(line, MAX_LOG_LINE_BYTES);
        for (const [index, piece] of pieces.entries()) {
          const more = index < pieces.length - 1;
          await this.#append(
            { kind: 'log', stream, level, lines: [piece], ...(more ? { partial: true } : {}) },
            more ? undefined : advance(ends?.[i]),
          );
        }
        continue;
      }
      if (batchBytes + line.length > BATCH_CHARS || batch.length >= BATCH_LINES) await flush();
      batch.push(line);
      batchBytes += line.length + 4;
      batchEnd = ends?.[i];
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
    if (keep || this.#lineOpen) return;
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
