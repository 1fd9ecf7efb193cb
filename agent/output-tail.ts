/**
 * Follows a step's output file as the container writes it. The step writes stdout and stderr to
 * files in its work folder (bind-mounted), which is several times faster than any engine log driver
 * and survives a restart of the agent: reading resumes at a byte offset.
 */
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';

const READ_BYTES = 1024 * 1024;
const IDLE_POLL_MS = 20;
const MAX_SERVICE_MESSAGE_CHARS = 16 * 1024 * 1024;

export interface TailSink {
  /** Complete lines, without line ends. Awaited: a slow sink slows the reading (backpressure). */
  lines(lines: string[]): Promise<void>;
  /** The start of a line longer than `maxPendingBytes` that has no end yet. */
  partial(piece: string): Promise<void>;
}

export class OutputTail {
  readonly path: string;
  #position: number;
  #finished = false;
  #wake: (() => void) | undefined;
  readonly #maxPendingChars: number;

  constructor(path: string, options: { position?: number; maxPendingChars: number }) {
    this.path = path;
    this.#position = options.position ?? 0;
    this.#maxPendingChars = options.maxPendingChars;
  }

  get position(): number {
    return this.#position;
  }

  /** The writer has ended: read what is left, then stop. */
  finish(): void {
    this.#finished = true;
    this.#wake?.();
  }

  async run(sink: TailSink): Promise<void> {
    const handle = await open(this.path, 'a+');
    const decoder = new StringDecoder('utf8');
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let pending = '';
    try {
      for (;;) {
        const finishing = this.#finished;
        const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, this.#position);
        if (bytesRead > 0) {
          this.#position += bytesRead;
          const parts = (pending + decoder.write(buffer.subarray(0, bytesRead))).split('\n');
          pending = parts.pop() ?? '';
          if (parts.length > 0) await sink.lines(parts.map(stripCarriageReturn));
          // A service message is held whole (up to a bound) so that it can be parsed.
          while (
            pending.length > this.#maxPendingChars &&
            !(pending.startsWith('##octopus[') && pending.length < MAX_SERVICE_MESSAGE_CHARS)
          ) {
            const cut = endsInHighSurrogate(pending, this.#maxPendingChars)
              ? this.#maxPendingChars - 1
              : this.#maxPendingChars;
            await sink.partial(pending.slice(0, cut));
            pending = pending.slice(cut);
          }
          continue;
        }
        if (finishing) break;
        await this.#idle();
      }
      pending += decoder.end();
      if (pending !== '') await sink.lines([stripCarriageReturn(pending)]);
    } finally {
      await handle.close();
    }
  }

  async #idle(): Promise<void> {
    const ac = new AbortController();
    const woken = new Promise<void>((resolve) => (this.#wake = resolve));
    await Promise.race([
      woken,
      sleep(IDLE_POLL_MS, undefined, { signal: ac.signal }).catch(() => undefined),
    ]);
    ac.abort();
    this.#wake = undefined;
  }
}

function stripCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function endsInHighSurrogate(text: string, end: number): boolean {
  const code = text.charCodeAt(end - 1);
  return code >= 0xd800 && code <= 0xdbff;
}
