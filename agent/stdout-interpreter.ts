/**
 * Reads a step's stdout as Calamari does: service message lines are acted on and never forwarded;
 * every other line is logged at the level the last `stdout-<level>` message set.
 */
import type { EventBody, LogLevel } from '../protocol/index.js';
import type { Masker } from './masker.js';
import { linesOfText, type TailSink } from './output-tail.js';
import {
  parseServiceMessage,
  SERVICE_MESSAGE_PREFIX,
  type ServiceMessage,
} from './service-messages.js';
import type { TaskLog } from './task-log.js';

/** A file the script marked with new_octopusartifact, as the script named it (container path). */
export interface ArtifactMark {
  path: string;
  name: string;
}

/**
 * An event is one text frame of at most 1 MiB: a variable's value gets nearly all of it, names,
 * paths and progress messages a bounded share (JSON may escape a character to six).
 */
const MAX_NAME_CHARS = 4096;
const MAX_VARIABLE_BYTES = 1024 * 1024 - 8 * MAX_NAME_CHARS;

const LEVELS: Record<string, LogLevel> = {
  'stdout-default': 'info',
  'stdout-verbose': 'verbose',
  'stdout-highlight': 'highlight',
  'stdout-wait': 'wait',
  'stdout-warning': 'warning',
  'stdout-error': 'error',
};

export class StdoutInterpreter implements TailSink {
  readonly artifacts: ArtifactMark[];
  /** The message of fail_step, if the script called it. */
  failureMessage: string | undefined;
  #level: LogLevel;
  readonly #log: TaskLog;
  readonly #masker: Masker;
  readonly #consume: (end: number) => void;
  readonly #keepSecret: (value: string) => Promise<void>;
  /** Where the service message being handled ends in the stdout file. */
  #lineEnd = 0;

  /**
   * `consume` records that stdout was read up to `end` by a line that made no event of its own;
   * `keepSecret` keeps a value the script asked to mask where a restarted agent finds it (it is
   * added to `masker` here); `restored` is the state a restarted agent found in the journal.
   */
  constructor(
    log: TaskLog,
    masker: Masker,
    consume: (end: number) => void,
    keepSecret: (value: string) => Promise<void>,
    restored?: { level: LogLevel; artifacts: ArtifactMark[] },
  ) {
    this.#log = log;
    this.#masker = masker;
    this.#consume = consume;
    this.#keepSecret = keepSecret;
    this.#level = restored?.level ?? 'info';
    this.artifacts = [...(restored?.artifacts ?? [])];
  }

  /** The level in effect for the lines that follow, for the journal's checkpoint. */
  get level(): LogLevel {
    return this.#level;
  }

  async lines(lines: string[], ends: number[]): Promise<void> {
    // Most batches hold no service message: hand them over whole.
    if (!lines.some((line) => line.startsWith(SERVICE_MESSAGE_PREFIX))) {
      await this.#log.write('stdout', this.#level, lines, ends);
      return;
    }
    let text: string[] = [];
    let textEnds: number[] = [];
    const flush = async (): Promise<void> => {
      if (text.length > 0) await this.#log.write('stdout', this.#level, text, textEnds);
      text = [];
      textEnds = [];
    };
    for (const [index, line] of lines.entries()) {
      const end = ends[index] ?? 0;
      // The rest of a line sent in pieces is text, whatever it starts with.
      const parsed =
        index === 0 && this.#log.lineOpen('stdout')
          ? { kind: 'text' as const }
          : parseServiceMessage(line);
      if (parsed.kind === 'text') {
        text.push(line);
        textEnds.push(end);
        continue;
      }
      await flush();
      this.#lineEnd = end;
      if (parsed.kind === 'broken') {
        await this.#log.system('warning', `ignored a malformed service message: ${parsed.reason}`);
      } else {
        await this.#handle(parsed.message);
      }
      this.#consume(end);
    }
    await flush();
  }

  /** Whole lines as one text: straight to the log unless a line in it is a service message. */
  async text(text: string, end: number): Promise<void> {
    if (holdsServiceMessage(text)) {
      const { lines, ends } = linesOfText(text, end);
      await this.lines(lines, ends);
      return;
    }
    await this.#log.writeText('stdout', this.#level, text, end);
  }

  partial(piece: string, end: number): Promise<void> {
    return this.#log.partial('stdout', this.#level, piece, end);
  }

  /** Masked from now on, and kept before any later line is journalled. */
  #addSecret(value: string): Promise<void> {
    this.#masker.add(value);
    return this.#keepSecret(value);
  }

  #appendFromLine(body: EventBody): Promise<void> {
    return this.#log.event('stdout', body, { stream: 'stdout', end: this.#lineEnd, open: false });
  }

  async #handle(message: ServiceMessage): Promise<void> {
    const get = (key: string): string | undefined => message.attributes.get(key);
    const level = LEVELS[message.name];
    if (level !== undefined) {
      this.#level = level;
      return;
    }
    switch (message.name) {
      case 'setVariable': {
        const name = get('name');
        if (name === undefined || name === '' || name.length > MAX_NAME_CHARS) {
          await this.#log.system(
            'warning',
            `ignored a setVariable service message: its name must be 1 to ${MAX_NAME_CHARS} characters`,
          );
          return;
        }
        const value = get('value') ?? '';
        const sensitive = /^true$/i.test(get('sensitive') ?? '');
        if (sensitive) await this.#addSecret(value);
        const size = Buffer.byteLength(JSON.stringify(value));
        if (size > MAX_VARIABLE_BYTES) {
          await this.#log.system(
            'warning',
            `the output variable ${name} is ${size} bytes; an event must fit in one 1 MiB frame, so variables are limited to ${MAX_VARIABLE_BYTES} bytes: write large values to a file and mark it as an artifact`,
          );
          return;
        }
        await this.#appendFromLine({ kind: 'variable', name, value, sensitive });
        return;
      }
      case 'createArtifact': {
        const path = get('path');
        const artifactName = get('name');
        if (
          path === undefined ||
          path === '' ||
          path.length > MAX_NAME_CHARS ||
          (artifactName?.length ?? 0) > MAX_NAME_CHARS
        ) {
          await this.#log.system(
            'warning',
            `ignored a createArtifact service message: its path must be 1 to ${MAX_NAME_CHARS} characters, its name at most as long`,
          );
          return;
        }
        this.artifacts.push({ path, name: artifactName || (path.split('/').pop() ?? path) });
        return;
      }
      case 'progress': {
        const percent = Number(get('percentage'));
        const body: EventBody = {
          kind: 'progress',
          activity: 'script',
          // An event is one frame: a progress message is a line of text, not a payload.
          message: this.#masker.mask((get('message') ?? '').slice(0, MAX_NAME_CHARS)),
          ...(Number.isFinite(percent) && percent >= 0 && percent <= 100 ? { percent } : {}),
        };
        await this.#appendFromLine(body);
        return;
      }
      case 'mask': {
        const value = get('value');
        if (value !== undefined) await this.#addSecret(value);
        return;
      }
      case 'resultMessage': {
        this.failureMessage = get('message') ?? '';
        await this.#log.system('error', `the step failed: ${this.failureMessage}`);
        return;
      }
      default:
        await this.#log.system('warning', `ignored an unknown service message "${message.name}"`);
    }
  }
}

/**
 * Whether a line of `text` (lines joined by '\n') starts with `##octopus[`. Most output has no '#'
 * at all: V8 finds a single character with memchr, several times faster than its search for the
 * whole prefix, which was 7% of the agent's main thread on busy logs (docs/performance.md).
 */
export function holdsServiceMessage(text: string): boolean {
  const hash = text.indexOf('#');
  if (hash < 0) return false;
  return (
    text.startsWith(SERVICE_MESSAGE_PREFIX) ||
    text.includes(`\n${SERVICE_MESSAGE_PREFIX}`, Math.max(0, hash - 1))
  );
}
