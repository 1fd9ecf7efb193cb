/**
 * A task's journal: the task itself and every event it produced, appended to disk before the event
 * is sent, so nothing is lost when the connection drops or the agent restarts.
 *
 * Format: `events.ndjson`, one event per line as the exact JSON text that is sent (a re-sent event
 * is byte-for-byte the first one). JSON.stringify never emits a raw newline, so a line is a frame;
 * a torn last line (no newline, or not valid JSON) is detected at load and cut off. Appends are not
 * fsynced per event: the page cache survives a crash or kill -9 of the agent, which is the failure
 * this guards against; a power loss may lose the unsynced tail.
 */
import {
  copyFile,
  link,
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { writevSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import {
  eventSchema,
  hashFile,
  linesJson,
  parseTask,
  taskIdSchema,
  type EventBody,
  type LogLevel,
  type LogStream,
  type Task,
  type TaskEvent,
} from '../protocol/index.js';
import { describe, isNotFound } from './agent-home.js';
import { WorkspaceError } from './workspace-error.js';

const TASK_FILE = 'task.json';
const EVENTS_FILE = 'events.ndjson';
const ARTIFACTS_DIR = 'artifacts';
const RUN_FILE = 'run.json';
/** Acknowledged bytes at the front of a journal before it is compacted (see compact()). */
const COMPACT_MIN_BYTES = 64 * 1024 * 1024;
/** Text of the newest events kept in memory: about the flow-control window (8 MiB). */
const RECENT_BYTES = 8 * 1024 * 1024;
const TAB = 0x09;

/**
 * A `log` event whose lines come joined by '\n' (none holds one): the busy log path's form. The
 * journal encodes them without splitting them (protocol/lines-json.ts); the event on the wire is
 * the `log` event of `text.split('\n')`.
 */
export interface LogText {
  kind: 'log-text';
  stream: LogStream;
  level: LogLevel;
  text: string;
}

/** What can be appended: an event's body, or a log event's lines as one text. */
export type JournalInput = EventBody | LogText;

export interface JournalEntry {
  readonly seq: number;
  /** The event's JSON text in UTF-8, as written to disk and sent: encoded once. */
  readonly bytes: Buffer;
  /** For a log event, the UTF-8 bytes of its lines (what the agent counts as log bytes); else 0. */
  readonly lineBytes: number;
}

export class TaskJournal {
  readonly taskId: string;
  readonly dir: string;
  #task: Task;
  #handle: FileHandle;
  /**
   * offsets[i] is where event seq base+i+1 starts in the file; the last entry is the file's end.
   * Events up to `base` were acknowledged and compacted away.
   */
  #offsets: number[];
  #base = 0;
  #finished: boolean;
  #chain: Promise<unknown> = Promise.resolve();
  #checkpoint: unknown;
  readonly #recent = new Map<number, Buffer>();
  #recentBytes = 0;

  private constructor(
    dir: string,
    task: Task,
    handle: FileHandle,
    offsets: number[],
    finished: boolean,
  ) {
    this.dir = dir;
    this.taskId = task.taskId;
    this.#task = task;
    this.#handle = handle;
    this.#offsets = offsets;
    this.#finished = finished;
  }

  /** The checkpoint of the last event that had one (unvalidated: its producer checks it). */
  get checkpoint(): unknown {
    return this.#checkpoint;
  }

  /** Facts about the step's execution (its container, folder), kept for a restarted agent. */
  async writeRunInfo(info: unknown): Promise<void> {
    await writeAtomically(join(this.dir, RUN_FILE), JSON.stringify(info));
  }

  async readRunInfo(): Promise<unknown> {
    try {
      return JSON.parse(await readFile(join(this.dir, RUN_FILE), 'utf8'));
    } catch {
      return undefined;
    }
  }

  get task(): Task {
    return this.#task;
  }

  get lastSeq(): number {
    return this.#base + this.#offsets.length - 1;
  }

  /** The last event compacted away (0 if none): the journal holds the events after it. */
  get compactedSeq(): number {
    return this.#base;
  }

  /** True once a `result` event is in the journal. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Starts a journal for a newly accepted task. The task file holds variables: 0600. */
  static async create(journalDir: string, task: Task): Promise<TaskJournal> {
    const dir = join(journalDir, task.taskId);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeAtomically(join(dir, TASK_FILE), JSON.stringify(task));
      const handle = await open(join(dir, EVENTS_FILE), 'w+', 0o600);
      return new TaskJournal(dir, task, handle, [0], false);
    } catch (error) {
      throw new WorkspaceError(
        `cannot create the journal of task ${task.taskId}: ${describe(error)}`,
        dir,
        {
          cause: error,
        },
      );
    }
  }

  /** Loads every journal left in the folder (after a restart). Unreadable ones are reported, not fatal. */
  static async loadAll(
    journalDir: string,
    onBroken: (error: WorkspaceError) => void,
  ): Promise<TaskJournal[]> {
    const journals: TaskJournal[] = [];
    for (const name of await readdir(journalDir)) {
      if (!v.is(taskIdSchema, name)) continue;
      try {
        journals.push(await TaskJournal.load(join(journalDir, name)));
      } catch (error) {
        onBroken(
          error instanceof WorkspaceError
            ? error
            : new WorkspaceError(`cannot load the journal ${name}: ${describe(error)}`, name, {
                cause: error,
              }),
        );
      }
    }
    return journals;
  }

  static async load(dir: string): Promise<TaskJournal> {
    const task = parseTask(JSON.parse(await readFile(join(dir, TASK_FILE), 'utf8')));
    const path = join(dir, EVENTS_FILE);
    let content: Buffer;
    try {
      content = await readFile(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      content = Buffer.alloc(0);
    }
    const offsets = [0];
    let finished = false;
    let checkpoint: unknown;
    let base = 0;
    let position = 0;
    while (position < content.length) {
      const newline = content.indexOf(0x0a, position);
      if (newline < 0) break; // torn last record
      const line = content.subarray(position, newline).toString('utf8');
      const tab = line.indexOf('\t');
      const parsed = v.safeParse(eventSchema, safeJson(tab < 0 ? line : line.slice(0, tab)));
      // A compacted journal starts after its acknowledged events.
      if (parsed.success && offsets.length === 1 && position === 0) base = parsed.output.seq - 1;
      if (
        !parsed.success ||
        parsed.output.seq !== base + offsets.length ||
        parsed.output.taskId !== task.taskId
      )
        break;
      if (parsed.output.kind === 'result') finished = true;
      if (tab >= 0) checkpoint = safeJson(line.slice(tab + 1));
      position = newline + 1;
      offsets.push(position);
    }
    if (position < content.length) await truncate(path, position);
    const handle = await open(path, 'a+', 0o600);
    const journal = new TaskJournal(dir, task, handle, offsets, finished);
    journal.#checkpoint = checkpoint;
    journal.#base = base;
    return journal;
  }

  /**
   * Gives the event its seq and time, writes it, and returns its seq and bytes. A `checkpoint`
   * (the producer's state after this event, e.g. how far the step's output was read) is written
   * on the same line after a tab, which JSON text never contains: event and checkpoint are on disk
   * together or not at all, so a restarted agent resumes exactly after the last journalled event.
   */
  append(body: JournalInput, checkpoint?: () => unknown): Promise<JournalEntry> {
    // A function is called in write order, so it sees every earlier append done.
    return this.#serialize(() => {
      if (this.#finished) {
        throw new WorkspaceError(`task ${this.taskId} already has a result`, this.dir);
      }
      const seq = this.lastSeq + 1;
      // Encoded before the checkpoint is taken: taking it moves the producer on (how far its
      // output was read), which must not happen for an event that is not written.
      const { bytes, lineBytes } = this.#encode(body, seq);
      const state = checkpoint?.();
      // The checkpoint's tab and JSON, and the line end, written with the event in one call.
      const suffix = Buffer.from(state === undefined ? '\n' : `\t${JSON.stringify(state)}\n`);
      const end = this.#offsets[this.#offsets.length - 1] ?? 0;
      // Written synchronously: an event goes to the page cache in microseconds, while a round
      // trip through libuv's thread pool (two thread wake-ups per event) cost more than the write
      // itself: a third of the agent's CPU on busy logs on a 2-core VM (docs/performance.md).
      const written = writevSync(this.#handle.fd, [bytes, suffix], end);
      if (written !== bytes.length + suffix.length) {
        throw new WorkspaceError(
          `task ${this.taskId}: event ${seq} was written short (${written} bytes): is the disk full?`,
          this.dir,
        );
      }
      this.#offsets.push(end + written);
      this.#remember(seq, bytes);
      if (body.kind === 'result') this.#finished = true;
      if (state !== undefined) this.#checkpoint = state;
      return { seq, bytes, lineBytes };
    });
  }

  /**
   * The event's JSON text in UTF-8, encoded once: the same bytes go to disk and, from #recent, to
   * the server (docs/performance.md). Busy log lines (`log-text`) are encoded by WebAssembly
   * without splitting them (protocol/lines-json.ts), or split and stringified where it declines.
   */
  #encode(body: JournalInput, seq: number): { bytes: Buffer; lineBytes: number } {
    const head = {
      type: 'event',
      taskId: this.taskId,
      seq,
      time: new Date().toISOString(),
    } as const;
    if (body.kind !== 'log-text') return encodeEvent({ ...head, ...body });
    const { stream, level, text } = body;
    const log = { ...head, kind: 'log', stream, level } as const;
    const fast = linesJson(text, `${JSON.stringify(log).slice(0, -1)},"lines":`, '}');
    // ASCII (what the module takes): a character is a byte, and each line end is one.
    if (fast !== undefined) return { bytes: fast.bytes, lineBytes: text.length - (fast.lines - 1) };
    return encodeEvent({ ...log, lines: text.split('\n') });
  }

  /**
   * Drops acknowledged events from the file once they are a large part of it: the events after
   * `ackedSeq` (and always the last one, which holds the newest checkpoint) are copied to a new
   * file that replaces the old one in one rename, so a crash leaves one or the other, whole.
   */
  compact(ackedSeq: number, minBytes = COMPACT_MIN_BYTES): Promise<void> {
    return this.#serialize(async () => {
      const keepFrom = Math.min(ackedSeq, this.lastSeq - 1) - this.#base;
      if (keepFrom <= 0) return;
      const start = this.#offsets[keepFrom] ?? 0;
      const end = this.#offsets[this.#offsets.length - 1] ?? 0;
      if (start < minBytes || start < end / 2) return;
      const path = join(this.dir, EVENTS_FILE);
      const temp = `${path}.tmp`;
      const target = await open(temp, 'w', 0o600);
      try {
        const buffer = Buffer.allocUnsafe(1024 * 1024);
        for (let position = start; position < end;) {
          const { bytesRead } = await this.#handle.read(
            buffer,
            0,
            Math.min(buffer.length, end - position),
            position,
          );
          if (bytesRead === 0) break;
          await target.write(buffer, 0, bytesRead);
          position += bytesRead;
        }
        await target.sync();
      } finally {
        await target.close();
      }
      await rename(temp, path);
      // The new file is open before the old handle goes, and handle, offsets and base change
      // together: read() is not serialized with compaction, and one made between closing and
      // reopening failed with EBADF, which stopped the outbox until the next connection.
      const replaced = this.#handle;
      this.#handle = await open(path, 'a+', 0o600);
      this.#offsets = this.#offsets.slice(keepFrom).map((offset) => offset - start);
      this.#base += keepFrom;
      // A read already under way on the old handle finishes first (FileHandle.close waits).
      await replaced.close();
    });
  }

  /**
   * Keeps the newest events' text in memory (bounded), so sending what was just written does not
   * read it back from disk; re-sends after a reconnect read the file.
   */
  #remember(seq: number, bytes: Buffer): void {
    this.#recent.set(seq, bytes);
    this.#recentBytes += bytes.length;
    for (const [oldest, oldBytes] of this.#recent) {
      if (this.#recentBytes <= RECENT_BYTES) break;
      this.#recent.delete(oldest);
      this.#recentBytes -= oldBytes.length;
    }
  }

  /** The exact bytes of event `seq` (its JSON text in UTF-8), as first written. */
  async read(seq: number): Promise<Buffer> {
    const recent = seq > this.#base ? this.#recent.get(seq) : undefined;
    if (recent !== undefined) return recent;
    const start = this.#offsets[seq - this.#base - 1];
    const end = this.#offsets[seq - this.#base];
    if (start === undefined || end === undefined || seq <= this.#base) {
      throw new WorkspaceError(
        `task ${this.taskId} has no event ${seq} (last is ${this.lastSeq})`,
        this.dir,
      );
    }
    const line = Buffer.alloc(end - start - 1);
    await this.#handle.read(line, 0, line.length, start);
    // A tab byte is never part of UTF-8 multi-byte sequences, and JSON text has none.
    const tab = line.indexOf(TAB);
    return tab < 0 ? line : line.subarray(0, tab);
  }

  /** Bytes on disk of the events after `seq`. */
  bytesAfter(seq: number): number {
    const end = this.#offsets[this.#offsets.length - 1] ?? 0;
    const index = Math.max(0, Math.min(seq, this.lastSeq) - this.#base);
    return end - (this.#offsets[index] ?? end);
  }

  /** Size in bytes of event `seq` on the wire. */
  sizeOf(seq: number): number {
    if (seq <= this.#base) return 0;
    return (this.#offsets[seq - this.#base] ?? 0) - (this.#offsets[seq - this.#base - 1] ?? 0) - 1;
  }

  /**
   * Keeps an artifact's content beside the journal until its event is acknowledged: a hard link
   * when the file system allows (no copy), a streamed copy otherwise. The SHA-256 is computed from
   * the kept file, so what is sent is exactly what was hashed.
   */
  async keepArtifact(source: string): Promise<{ sha256: string; size: number }> {
    const dir = join(this.dir, ARTIFACTS_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(
      dir,
      `incoming-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    );
    try {
      await link(source, temp);
    } catch {
      await copyFile(source, temp);
    }
    const { sha256, size } = await hashFile(temp);
    await rename(temp, this.artifactPath(sha256));
    return { sha256, size };
  }

  /** Where the content of an artifact event with this SHA-256 is kept. */
  artifactPath(sha256: string): string {
    return join(this.dir, ARTIFACTS_DIR, sha256);
  }

  /**
   * Once the step ended its variables are no longer needed: the task file is rewritten without
   * their values, so no secret stays on disk after the step (the journal keeps only events).
   */
  forgetVariables(): Promise<void> {
    return this.#serialize(async () => {
      this.#task = { ...this.#task, variables: [], container: stripFeed(this.#task.container) };
      await writeAtomically(join(this.dir, TASK_FILE), JSON.stringify(this.#task));
    });
  }

  /** Deletes the journal (the result was acknowledged, or the server does not know the task). */
  remove(): Promise<void> {
    return this.#serialize(async () => {
      await this.#handle.close().catch(() => undefined);
      await rm(this.dir, { recursive: true, force: true });
    });
  }

  async close(): Promise<void> {
    await this.#serialize(() => this.#handle.close());
  }

  #serialize<T>(work: () => T | Promise<T>): Promise<T> {
    const next = this.#chain.then(work, work);
    this.#chain = next.catch(() => undefined);
    return next;
  }
}

/**
 * The agent's own events are typed where they are made; validating each again here was a
 * measurable share of the agent's CPU on busy logs (docs/benchmarks.md).
 */
function encodeEvent(event: TaskEvent): { bytes: Buffer; lineBytes: number } {
  const text = JSON.stringify(event);
  const bytes = Buffer.from(text, 'utf8');
  if (event.kind !== 'log') return { bytes, lineBytes: 0 };
  // ASCII JSON (as many bytes as characters) has ASCII lines: their lengths are their sizes.
  if (bytes.length !== text.length)
    return { bytes, lineBytes: Buffer.byteLength(event.lines.join('')) };
  let lineBytes = 0;
  for (const line of event.lines) lineBytes += line.length;
  return { bytes, lineBytes };
}

function stripFeed(container: Task['container']): Task['container'] {
  if (container === undefined) return undefined;
  const { feed: _feed, ...rest } = container;
  return rest;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}.tmp`;
  await writeFile(temp, content, { mode: 0o600 });
  await rename(temp, path);
}
