/**
 * The reference server's files under its data folder:
 *
 *   tasks/<taskId>/task.json      the task as submitted and where it stands (written whole, by rename)
 *   tasks/<taskId>/events.jsonl   every stored event, one JSON object a line, in seq order
 *   artifacts/<sha256>            artifacts received from agents, content-addressed
 *   blobs/<sha256>                packages and tool bundles the server can send, content-addressed
 *
 * Both task files are readable by the server's user alone: a task may carry sensitive variables.
 */
import { randomBytes } from 'node:crypto';
import { writeSync, writevSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, truncate, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import * as v from 'valibot';
import { eventSchema, rejectedSchema, taskSchema, type TaskEvent } from '../messages.js';
import { TASK_STATUSES, type PersistedTask } from './task-record.js';

const persistedTaskSchema = v.object({
  task: taskSchema,
  status: v.picklist(TASK_STATUSES),
  agentId: v.optional(v.string()),
  submittedAt: v.string(),
  cancelRequested: v.optional(v.boolean(), false),
  rejected: v.optional(rejectedSchema),
});

const NEWLINE = Buffer.from('\n');

export interface LoadedTask {
  persisted: PersistedTask;
  events: TaskEvent[];
  /** Bytes of events.jsonl that hold `events` (a torn last line after them was cut off). */
  eventsBytes: number;
}

export class TaskStore {
  readonly #open = new Map<string, FileHandle>();
  constructor(readonly dataDir: string) {}

  taskDir(taskId: string): string {
    return join(this.dataDir, 'tasks', taskId);
  }

  /** Every stored event of the task, one JSON text a line. */
  eventsPath(taskId: string): string {
    return join(this.taskDir(taskId), 'events.jsonl');
  }

  artifactPath(sha256: string): string {
    return join(this.dataDir, 'artifacts', sha256);
  }

  blobPath(sha256: string): string {
    return join(this.dataDir, 'blobs', sha256);
  }

  async init(): Promise<void> {
    for (const folder of ['tasks', 'artifacts', 'blobs']) {
      await mkdir(join(this.dataDir, folder), { recursive: true, mode: 0o700 });
    }
  }

  /** Written to a temp file and renamed, so a crash never leaves half a task.json. */
  async saveTask(persisted: PersistedTask): Promise<void> {
    const dir = this.taskDir(persisted.task.taskId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(dir, `task.json.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(temp, JSON.stringify(persisted, null, 2) + '\n', { mode: 0o600 });
    await rename(temp, join(dir, 'task.json'));
  }

  /**
   * Appends through a file kept open per task until its result (one open and mkdir per task).
   * `line` is the event's JSON on one line: the frame's bytes as received, or the event serialized.
   */
  async appendEvent(
    event: TaskEvent,
    line: string | Buffer = JSON.stringify(event),
  ): Promise<void> {
    let handle = this.#open.get(event.taskId);
    if (handle === undefined) {
      const dir = this.taskDir(event.taskId);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      handle = await open(this.eventsPath(event.taskId), 'a', 0o600);
      this.#open.set(event.taskId, handle);
    }
    // Synchronous: an event is a small write to the page cache, and a round trip through libuv's
    // thread pool per event cost more than the write (docs/performance.md, round 8).
    if (typeof line === 'string') writeSync(handle.fd, `${line}\n`);
    else writevSync(handle.fd, [line, NEWLINE]);
    if (event.kind === 'result') {
      this.#open.delete(event.taskId);
      await handle.close();
    }
  }

  /** Closes the event files still open (tasks without a result yet). */
  async closeFiles(): Promise<void> {
    const handles = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
  }

  /**
   * Every task found on disk. Events are read up to the first line that does not parse or does
   * not follow its predecessor: a crash mid-append leaves at most one torn last line.
   */
  async loadTasks(): Promise<LoadedTask[]> {
    let ids: string[];
    try {
      ids = await readdir(join(this.dataDir, 'tasks'));
    } catch {
      return [];
    }
    const loaded: LoadedTask[] = [];
    for (const id of ids.sort()) {
      const persisted = await readJson(join(this.taskDir(id), 'task.json'));
      const parsed = v.safeParse(persistedTaskSchema, persisted);
      if (!parsed.success || parsed.output.task.taskId !== id) continue;
      loaded.push({ persisted: parsed.output, ...(await this.#loadEvents(id)) });
    }
    return loaded;
  }

  /**
   * The events on disk, up to the first line that is torn or out of order, which is cut off with
   * everything after it: the next append must not land behind a line that no load gets past.
   */
  async #loadEvents(taskId: string): Promise<{ events: TaskEvent[]; eventsBytes: number }> {
    const path = this.eventsPath(taskId);
    let content: Buffer;
    try {
      content = await readFile(path);
    } catch {
      return { events: [], eventsBytes: 0 };
    }
    const events: TaskEvent[] = [];
    let position = 0;
    for (let end = content.indexOf(0x0a); end >= 0; end = content.indexOf(0x0a, position)) {
      const event = v.safeParse(
        eventSchema,
        parseJsonLine(content.toString('utf8', position, end)),
      );
      if (!event.success || event.output.seq !== events.length + 1) break;
      events.push(event.output);
      position = end + 1;
    }
    if (position < content.length) await truncate(path, position);
    return { events, eventsBytes: position };
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return parseJsonLine(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function parseJsonLine(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
