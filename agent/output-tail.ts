/**
 * Follows a step's output file as the container writes it. The step writes stdout and stderr to
 * files in its work folder (bind-mounted), which is several times faster than any engine log driver
 * and survives a restart of the agent: reading resumes at a byte offset. Lines are split on bytes,
 * so every line's end offset is exact even when the output is not valid UTF-8.
 */
import { isAscii } from 'node:buffer';
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const READ_BYTES = 1024 * 1024;
/**
 * Plain text goes to the sink in pieces of about this size, each cut at a line end: a string over
 * 128 KiB is a large object to V8, and making one costs several times a regular one (measured:
 * 110 against 14 ms per 200 MB to decode), again at every copy down the line.
 */
const TEXT_PIECE_BYTES = 64 * 1024;
const IDLE_POLL_MS = 20;
const SERVICE_MESSAGE_PREFIX = Buffer.from('##octopus[');
/** A service message is held whole (up to this size) so that it can be parsed. */
const MAX_SERVICE_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface TailSink {
  /**
   * Complete lines, without line ends; `ends[i]` is the file offset just after line i. Awaited: a
   * slow sink slows the reading (backpressure).
   */
  lines(lines: string[], ends: number[]): Promise<void>;
  /**
   * The fast path, offered when the sink has it: complete lines of ASCII without a carriage
   * return, joined by '\n' (no final line end), the last of them ending at `end`. One string
   * instead of a string and an offset per line is most of what makes busy logs cheap.
   */
  text?(text: string, end: number): Promise<void>;
  /** The start of a line longer than `maxPendingBytes` that has no end yet, ending at `end`. */
  partial(piece: string, end: number): Promise<void>;
}

export class OutputTail {
  readonly path: string;
  #position: number;
  #finished = false;
  #wake: (() => void) | undefined;
  readonly #maxPendingBytes: number;
  #handle: FileHandle | undefined;

  constructor(path: string, options: { position?: number; maxPendingBytes: number }) {
    this.path = path;
    this.#position = options.position ?? 0;
    this.#maxPendingBytes = options.maxPendingBytes;
  }

  /** The writer has ended: read what is left, then stop. */
  finish(): void {
    this.#finished = true;
    this.#wake?.();
  }

  /**
   * Reads until finish() and the end of the file. The file stays open afterwards, until release():
   * removing a file of hundreds of MB makes the kernel free its pages, which took ~150 ms on a busy
   * machine; with the file still open the removal is instant and that work happens at the last
   * close instead, after the step's result (docs/performance.md, round 8).
   */
  async run(sink: TailSink): Promise<void> {
    const handle = await open(this.path, 'a+');
    this.#handle = handle;
    // Bytes read but not yet handed over (the start of an unfinished line) stay at the front of
    // `buffer`, `held` of them, and the next read lands right after them: a new buffer per read
    // (Buffer.concat) was ~1 MiB of memory outside V8's heap per MiB of output, and such memory
    // is what starts V8's full collections on busy logs (docs/performance.md, round 10). The
    // buffer grows only while a line without an end is held whole (a service message).
    let buffer = Buffer.allocUnsafe(READ_BYTES);
    let held = 0;
    let heldStart = this.#position;
    const resize = (size: number): void => {
      const resized = Buffer.allocUnsafe(size);
      buffer.copy(resized, 0, 0, held);
      buffer = resized;
    };
    // After a read found nothing new, the next is synchronous: at the end of the file it returns
    // at once, where a read through libuv's thread pool costs two thread wake-ups, which were most
    // of the agent's CPU with eight quiet steps polling (docs/performance.md, round 8). Reads
    // that find data go through the pool, where they overlap the handling of the last one.
    let idle = false;
    try {
      for (;;) {
        const finishing = this.#finished;
        if (buffer.length - held < READ_BYTES / 2) resize(held + READ_BYTES);
        const room = buffer.length - held;
        const bytesRead: number = idle
          ? readSync(handle.fd, buffer, held, room, this.#position)
          : (await handle.read(buffer, held, room, this.#position)).bytesRead;
        idle = bytesRead === 0;
        if (bytesRead > 0) {
          this.#position += bytesRead;
          const data = buffer.subarray(0, held + bytesRead);
          const last = data.lastIndexOf(0x0a);
          let rest: number; // where the bytes not handed over start in `data`
          if (last >= 0 && sink.text !== undefined && isPlainText(data, last)) {
            let start = 0;
            while (start <= last) {
              let stop = last;
              if (stop - start > TEXT_PIECE_BYTES) {
                stop = data.lastIndexOf(0x0a, start + TEXT_PIECE_BYTES);
                if (stop < start) stop = data.indexOf(0x0a, start + TEXT_PIECE_BYTES);
              }
              await sink.text(data.toString('latin1', start, stop), heldStart + stop + 1);
              start = stop + 1;
            }
            rest = last + 1;
          } else {
            const { lines, ends, start } = splitLines(data, heldStart);
            rest = start;
            if (lines.length > 0) await sink.lines(lines, ends);
          }
          // An unfinished line over the limit goes in pieces (unless held whole), then what is
          // left moves to the front of the buffer, once.
          const max = this.#maxPendingBytes;
          let from = rest;
          while (data.length - from > max && !this.#holdWhole(data.subarray(from))) {
            let cut = from + max;
            while (cut > from && ((data[cut] ?? 0) & 0xc0) === 0x80) cut -= 1; // not inside a character
            if (cut === from) cut = from + max; // no character starts there: not UTF-8 at all
            await sink.partial(data.toString('utf8', from, cut), heldStart + cut);
            from = cut;
          }
          heldStart += from;
          held = data.length - from;
          buffer.copyWithin(0, from, data.length);
          // A buffer grown for a long line goes back to its usual size once the line is handed over.
          if (buffer.length > READ_BYTES && held <= READ_BYTES / 2) resize(READ_BYTES);
          continue;
        }
        if (finishing) break;
        await this.#idle();
      }
      if (held > 0) {
        await sink.lines([buffer.toString('utf8', 0, held)], [heldStart + held]);
      }
    } catch (error) {
      await this.release();
      throw error;
    }
  }

  /** Closes the file, once reading has ended. */
  async release(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  #holdWhole(pending: Buffer): boolean {
    return (
      pending.length < MAX_SERVICE_MESSAGE_BYTES &&
      pending.subarray(0, SERVICE_MESSAGE_PREFIX.length).equals(SERVICE_MESSAGE_PREFIX)
    );
  }

  /** Waits for the next poll or for finish(). A plain timer: aborting one cost a DOMException. */
  async #idle(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => resolve(), IDLE_POLL_MS);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }
}

/** ASCII up to `end` without a carriage return: its characters are its bytes. */
function isPlainText(data: Buffer, end: number): boolean {
  const head = data.subarray(0, end);
  return isAscii(head) && head.indexOf(0x0d) < 0;
}

/**
 * The lines of `text` (as given to `TailSink.text`) and the file offset after each: the inverse of
 * the fast path, for a sink that must look at lines one by one.
 */
export function linesOfText(text: string, end: number): { lines: string[]; ends: number[] } {
  const lines = text.split('\n');
  const ends: number[] = new Array<number>(lines.length);
  let position = end - text.length - 1;
  for (let i = 0; i < lines.length; i++) {
    position += (lines[i] ?? '').length + 1;
    ends[i] = position;
  }
  return { lines, ends };
}

/**
 * Splits the complete lines off `data` (which starts at file offset `offset`): their text without
 * line ends, the file offset after each, and where the unfinished rest starts. ASCII, the common
 * case, is decoded in one call and its offsets counted in characters; anything else is split on
 * bytes so each offset stays exact.
 */
export function splitLines(
  data: Buffer,
  offset: number,
): { lines: string[]; ends: number[]; start: number } {
  const last = data.lastIndexOf(0x0a);
  if (last < 0) return { lines: [], ends: [], start: 0 };
  if (isAscii(data.subarray(0, last))) {
    const parts = data.toString('latin1', 0, last).split('\n');
    const ends: number[] = new Array<number>(parts.length);
    let position = offset;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? '';
      position += part.length + 1;
      ends[i] = position;
      if (part.endsWith('\r')) parts[i] = part.slice(0, -1);
    }
    return { lines: parts, ends, start: last + 1 };
  }
  const lines: string[] = [];
  const ends: number[] = [];
  let start = 0;
  for (let newline = data.indexOf(0x0a); newline >= 0; newline = data.indexOf(0x0a, start)) {
    const end = newline > start && data[newline - 1] === 0x0d ? newline - 1 : newline;
    lines.push(data.toString('utf8', start, end));
    ends.push(offset + newline + 1);
    start = newline + 1;
  }
  return { lines, ends, start };
}
