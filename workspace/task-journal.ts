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
  lstat,
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
import { constants, ftruncateSync, writevSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
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
/** Values the step asked to mask (service messages); secrets, so gone with the variables. */
const MASKS_FILE = 'masks.json';
/** Suffix of a file being written before it is renamed into place (writeAtomically, compact). */
const TEMP_SUFFIX = '.tmp';
/** Prefix of an artifact being kept before it is renamed to its SHA-256 (keepArtifact). */
const INCOMING_PREFIX = 'incoming-';
/**
 * Prefix of a journal folder being removed: remove() renames the folder first, so a removal cut
 * short never leaves a half journal under its task's name. '~' is not in a task id.
 */
const TRASH_PREFIX = '~removing-';
/** Acknowledged bytes at the front of a journal before it is compacted (see compact()). */
const COMPACT_MIN_BYTES = 64 * 1024 * 1024;
/** Text of the newest events kept in memory: about the flow-control window (8 MiB). */
const RECENT_BYTES = 8 * 1024 * 1024;
const TAB = 0x09;
/**
 * How an existing events file is opened: read-write, created if missing, and not O_APPEND, with
 * which Linux ignores a write's position and writes at the file's end, past any torn bytes.
 */
const EVENTS_OPEN_FLAGS = constants.O_RDWR | constants.O_CREAT;

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

/**
 * What a crash left in the journal folder (a half-removed or half-created journal, a temporary
 * file): removed at load, as nothing can use it and it may hold a task's secrets. Reported through
 * loadAll's `onBroken`; `removed` says whether it is gone or is still there (removal failed).
 */
export class JournalLeftoverError extends WorkspaceError {
  readonly removed: boolean;

  constructor(message: string, path: string, removed: boolean, options?: { cause?: unknown }) {
    super(message, path, options);
    this.removed = removed;
  }
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
  #masks: string[] = [];

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

  /**
   * Values the step's own output asked to mask (a `mask` service message, a sensitive output
   * variable), kept beside the task's variables for a restarted agent, and forgotten with them.
   */
  get masks(): readonly string[] {
    return this.#masks;
  }

  /** Adds values to mask; on disk before it resolves, so no later event can reveal them. */
  addMasks(values: readonly string[]): Promise<void> {
    return this.#serialize(async () => {
      const added = values.filter((value) => value !== '' && !this.#masks.includes(value));
      if (added.length === 0) return;
      this.#masks = [...this.#masks, ...added];
      await writeAtomically(join(this.dir, MASKS_FILE), JSON.stringify(this.#masks));
    });
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
    let made: string | undefined;
    try {
      made = await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeAtomically(join(dir, TASK_FILE), JSON.stringify(task));
      const handle = await open(join(dir, EVENTS_FILE), 'w+', 0o600);
      return new TaskJournal(dir, task, handle, [0], false);
    } catch (error) {
      // A folder this call made holds nothing to keep; one that was there is left as it was.
      if (made !== undefined)
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw new WorkspaceError(
        `cannot create the journal of task ${task.taskId}: ${describe(error)}`,
        dir,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * Loads every journal left in the folder (after a restart). Unreadable ones are reported, not
   * fatal. What a crash left and nothing can load is removed and reported (JournalLeftoverError).
   */
  static async loadAll(
    journalDir: string,
    onBroken: (error: WorkspaceError) => void,
  ): Promise<TaskJournal[]> {
    const journals: TaskJournal[] = [];
    for (const name of await readdir(journalDir)) {
      const dir = join(journalDir, name);
      if (name.startsWith(TRASH_PREFIX)) {
        await removeLeftover(dir, 'the rest of a journal whose removal was cut short', onBroken);
        continue;
      }
      if (!v.is(taskIdSchema, name)) continue;
      // Without its task file a journal cannot be resumed: it is what a create or a removal cut
      // short left (a temporary task file with the variables, events, kept artifacts).
      if (await isMissing(join(dir, TASK_FILE))) {
        await removeLeftover(dir, 'a journal without its task file', onBroken);
        continue;
      }
      try {
        journals.push(await TaskJournal.load(dir, onBroken));
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

  /**
   * Loads one journal. Temporary files a crash left in it are removed first and reported to
   * `onWarning`: only load, at the agent's start, may do that, as nothing else writes then.
   */
  static async load(
    dir: string,
    onWarning: (error: WorkspaceError) => void = () => undefined,
  ): Promise<TaskJournal> {
    await removeStrays(dir, onWarning);
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
    // The agent forgets a finished task's secrets right after its result, unless it was killed in
    // between; done here so that nothing depends on it.
    let kept = task;
    let masks: string[] = [];
    if (finished) {
      kept = withoutSecrets(task);
      await forgetSecretsOnDisk(dir, holdsSecrets(task) ? kept : undefined).catch(
        (error: unknown) =>
          onWarning(
            new WorkspaceError(
              `cannot remove the secrets of finished task ${task.taskId} from its journal (tried again at the next start): ${describe(error)}`,
              dir,
              { cause: error },
            ),
          ),
      );
    } else {
      masks = await readMasks(join(dir, MASKS_FILE));
    }
    const handle = await open(path, EVENTS_OPEN_FLAGS, 0o600);
    const journal = new TaskJournal(dir, kept, handle, offsets, finished);
    journal.#checkpoint = checkpoint;
    journal.#base = base;
    journal.#masks = masks;
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
      let written: number;
      try {
        written = writevSync(this.#handle.fd, [bytes, suffix], end);
      } catch (error) {
        this.#cutTo(end);
        throw new WorkspaceError(
          `task ${this.taskId}: cannot write event ${seq}: ${describe(error)}`,
          this.dir,
          { cause: error },
        );
      }
      if (written !== bytes.length + suffix.length) {
        this.#cutTo(end);
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
   * Drops the torn bytes of a failed write, so the file ends where the journal does. Best effort:
   * the next write is positioned at the journal's end anyway, and a load cuts a torn tail.
   */
  #cutTo(end: number): void {
    try {
      ftruncateSync(this.#handle.fd, end);
    } catch {
      // Nothing more to do: see above.
    }
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
      const temp = `${path}${TEMP_SUFFIX}`;
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
      this.#handle = await open(path, EVENTS_OPEN_FLAGS, 0o600);
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
   * Keeps an artifact's content beside the journal until its event is acknowledged. The SHA-256 is
   * computed from the kept file, so what is sent is exactly what was hashed, and the kept file
   * must not change afterwards: it is a hard link (no copy) only when `mayLink` says nobody else
   * writes the source (a file of the step's own work folder, removed after the step) and the
   * source has no other name; otherwise a copy (a reflink where the file system has them). A file
   * in a folder mounted from the worker keeps its inode when a later task rewrites it with `>`.
   */
  async keepArtifact(
    source: string,
    { mayLink }: { mayLink: boolean },
  ): Promise<{ sha256: string; size: number }> {
    const dir = join(this.dir, ARTIFACTS_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(
      dir,
      `${INCOMING_PREFIX}${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    );
    try {
      if (!mayLink || !(await linkAlone(source, temp))) {
        await copyFile(source, temp, constants.COPYFILE_FICLONE);
      }
      const { sha256, size } = await hashFile(temp);
      await rename(temp, this.artifactPath(sha256));
      return { sha256, size };
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
  }

  /** Where the content of an artifact event with this SHA-256 is kept. */
  artifactPath(sha256: string): string {
    return join(this.dir, ARTIFACTS_DIR, sha256);
  }

  /**
   * Once the step ended its secrets are no longer needed: the task file is rewritten without its
   * variables, its feed and its Git URL's credentials, so no secret stays on disk after the step
   * (the journal keeps only events). A journal loaded as finished is stripped at load.
   */
  forgetVariables(): Promise<void> {
    return this.#serialize(async () => {
      this.#task = withoutSecrets(this.#task);
      this.#masks = [];
      await forgetSecretsOnDisk(this.dir, this.#task);
    });
  }

  /**
   * Deletes the journal (the result was acknowledged, or the server does not know the task). The
   * folder is first renamed out of the way in one step, so a kill or a failure while deleting
   * leaves a trash folder that the next load deletes, not a half journal it cannot load.
   */
  remove(): Promise<void> {
    return this.#serialize(async () => {
      await this.#handle.close().catch(() => undefined);
      const trash = join(
        dirname(this.dir),
        `${TRASH_PREFIX}${basename(this.dir)}-${randomBytes(6).toString('hex')}`,
      );
      try {
        await rename(this.dir, trash);
      } catch (error) {
        if (isNotFound(error)) return;
        throw new WorkspaceError(
          `cannot remove the journal of task ${this.taskId}: ${describe(error)}`,
          this.dir,
          { cause: error },
        );
      }
      try {
        await rm(trash, { recursive: true, force: true, maxRetries: 2 });
      } catch (error) {
        throw new WorkspaceError(
          `cannot delete ${trash}, the removed journal of task ${this.taskId} (it is deleted at the next start): ${describe(error)}`,
          trash,
          { cause: error },
        );
      }
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

/** The task without its secrets: variables, the feed, the Git URL's credentials. */
/**
 * What is left on disk once the step ended: the task file rewritten as `task` (when given: one
 * already without secrets need not be), and no masks file.
 */
async function forgetSecretsOnDisk(dir: string, task: Task | undefined): Promise<void> {
  if (task !== undefined) await writeAtomically(join(dir, TASK_FILE), JSON.stringify(task));
  await rm(join(dir, MASKS_FILE), { force: true });
}

function withoutSecrets(task: Task): Task {
  if (task.container === undefined) return { ...task, variables: [] };
  const { feed: _feed, ...container } = task.container;
  const { git } = container;
  return {
    ...task,
    variables: [],
    container:
      git === undefined
        ? container
        : { ...container, git: { ...git, url: withoutCredentials(git.url) } },
  };
}

function holdsSecrets(task: Task): boolean {
  const { variables, container } = task;
  return (
    variables.length > 0 ||
    container?.feed !== undefined ||
    (container?.git !== undefined && withoutCredentials(container.git.url) !== container.git.url)
  );
}

/**
 * The URL without its user information (`https://user:token@host/…` → `https://host/…`); the
 * images layer takes the user as a secret too (a token alone is often given as the user). The
 * greedy match ends at the authority's last '@', so a password with a raw '@' goes as well.
 */
/**
 * The URL without what may be credentials: its user information, and its query string (a token
 * such as `?private_token=…`); the rest still says what was built.
 */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1').replace(/\?[^#]*/, '');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The masks file, or none; a torn or foreign one cannot be, as it is written atomically. */
async function readMasks(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const parsed = v.safeParse(v.array(v.string()), safeJson(text));
  if (!parsed.success) {
    throw new WorkspaceError(`the masked values in ${path} are not a list of strings`, path);
  }
  return parsed.output;
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}${TEMP_SUFFIX}`;
  try {
    await writeFile(temp, content, { mode: 0o600 });
    await rename(temp, path);
  } catch (error) {
    // A task file's copy holds its variables: not left behind (a crash's is removed at load).
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Hard-links `source` to `target` when the source is a regular file with no other name (through
 * which it could be written); false when not, or the file system cannot link it (then the caller
 * copies).
 */
async function linkAlone(source: string, target: string): Promise<boolean> {
  try {
    const info = await lstat(source);
    // A symbolic link would be linked itself, and its target read through it when sent.
    if (!info.isFile() || info.nlink !== 1) return false;
    await link(source, target);
    return true;
  } catch {
    return false;
  }
}

async function isMissing(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return false;
  } catch (error) {
    return isNotFound(error);
  }
}

/** Removes a leftover folder of the journal folder, and says so (or that it could not). */
async function removeLeftover(
  path: string,
  what: string,
  report: (error: WorkspaceError) => void,
): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
    report(new JournalLeftoverError(`removed ${path}: ${what}`, path, true));
  } catch (error) {
    report(
      new JournalLeftoverError(`cannot remove ${path}, ${what}: ${describe(error)}`, path, false, {
        cause: error,
      }),
    );
  }
}

/**
 * Removes the temporary files of writes a crash cut short in a journal's folder: a task file's
 * copy (variables), a compaction's new events file, an artifact not yet renamed to its SHA-256.
 */
async function removeStrays(dir: string, report: (error: WorkspaceError) => void): Promise<void> {
  const strays = [
    ...(await listNames(dir)).filter((name) => name.endsWith(TEMP_SUFFIX)),
    ...(await listNames(join(dir, ARTIFACTS_DIR)))
      .filter((name) => name.startsWith(INCOMING_PREFIX))
      .map((name) => join(ARTIFACTS_DIR, name)),
  ];
  if (strays.length === 0) return;
  try {
    for (const name of strays) await rm(join(dir, name), { force: true });
    report(
      new JournalLeftoverError(
        `removed from ${dir} what a crash left: ${strays.join(', ')}`,
        dir,
        true,
      ),
    );
  } catch (error) {
    report(
      new JournalLeftoverError(
        `cannot remove from ${dir} what a crash left (${strays.join(', ')}): ${describe(error)}`,
        dir,
        false,
        { cause: error },
      ),
    );
  }
}

/** The names in a folder; none when it does not exist (or is not a folder: load says why). */
async function listNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
