/**
 * What the reference server knows about one task: the task itself, where it stands, and its
 * stored events. Tests and the CLI see it through the read-only `TaskHandle`.
 */
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as v from 'valibot';
import {
  eventSchema,
  type Accepted,
  type Outcome,
  type Rejected,
  type ResultEvent,
  type Task,
  type TaskEvent,
  type TaskState,
} from '../messages.js';
import { joinLogLines } from './log-lines.js';

/**
 * The server's view of a task, which is not the agent's `state` event:
 * - `pending`: waiting for an agent with a free slot;
 * - `pushed`: sent to an agent, not yet answered;
 * - `accepted` / `rejected`: the agent's answer;
 * - `finished`: its `result` event is stored;
 * - `cancelled`: cancelled before it was ever pushed (an agent never saw it);
 * - `lost`: its agent came back without it although events were stored, so its fate is unknown.
 */
export const TASK_STATUSES = [
  'pending',
  'pushed',
  'accepted',
  'rejected',
  'finished',
  'cancelled',
  'lost',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Statuses after which nothing more will happen to a task. */
export function isTerminalStatus(status: TaskStatus): boolean {
  return status !== 'pending' && status !== 'pushed' && status !== 'accepted';
}

/** The part of a task record written to task.json. */
export interface PersistedTask {
  task: Task;
  status: TaskStatus;
  agentId?: string | undefined;
  submittedAt: string;
  cancelRequested: boolean;
  rejected?: Rejected | undefined;
}

export interface TaskSummary {
  taskId: string;
  name: string;
  status: TaskStatus;
  /** The last `state` event's state. */
  phase?: TaskState | undefined;
  outcome?: Outcome | undefined;
  agentId?: string | undefined;
  lastSeq: number;
  submittedAt: string;
  rejected?: Rejected | undefined;
}

type TaskRecordEvents = { event: [TaskEvent]; status: [TaskStatus] };

/** Read-only view of a task for tests and the CLI. */
export interface TaskHandle {
  readonly taskId: string;
  readonly task: Task;
  readonly status: TaskStatus;
  /** Stored events, in seq order. */
  readonly events: readonly TaskEvent[];
  /** Resolves with the agent's answer to the push; never rejects. */
  readonly accepted: Promise<Accepted | Rejected>;
  /** Resolves when the `result` event is stored; never rejects. */
  readonly result: Promise<ResultEvent>;
  /** Text of every log line so far (all streams), with `partial` pieces joined. */
  logLines(): string[];
  summary(): TaskSummary;
  on<K extends keyof TaskRecordEvents>(
    event: K,
    listener: (...args: TaskRecordEvents[K]) => void,
  ): this;
  off<K extends keyof TaskRecordEvents>(
    event: K,
    listener: (...args: TaskRecordEvents[K]) => void,
  ): this;
}

export class TaskRecord implements TaskHandle {
  readonly task: Task;
  /**
   * Where the stored events are, one JSON text a line, and how far they were read into #parsed.
   * Events are read back from there when asked for rather than kept: the texts of a busy log held
   * in memory made the collector copy each one out of the young generation and grew the heap by
   * the log's size (docs/performance.md, round 8).
   */
  readonly #file: { path: string; offset: number };
  #count = 0;
  /** The events read so far, parsed once in order (tests and the HTTP API read them). */
  readonly #parsed: TaskEvent[] = [];
  #phase: TaskState | undefined;
  #outcome: Outcome | undefined;
  readonly submittedAt: string;
  readonly accepted: Promise<Accepted | Rejected>;
  readonly result: Promise<ResultEvent>;
  status: TaskStatus;
  agentId: string | undefined;
  cancelRequested = false;
  /** Highest seq acknowledged to the agent (an ack or a resume). */
  acked = 0;
  /** Bytes of events stored since the last ack (the server acks after so many, see server.ts). */
  bytesSinceAck = 0;
  #answer: Accepted | Rejected | undefined;
  // Untyped inside; `on`/`off` below are the typed surface.
  readonly #emitter = new EventEmitter();
  #resolveAccepted: (answer: Accepted | Rejected) => void = () => undefined;
  #resolveResult: (result: ResultEvent) => void = () => undefined;
  #chain: Promise<unknown> = Promise.resolve();

  /**
   * `eventsFile` is where the store appends the task's events (it may not exist yet); `events`
   * were loaded from its first `eventsFile.bytes` bytes.
   */
  constructor(
    persisted: PersistedTask,
    eventsFile: { path: string; bytes: number },
    events: readonly TaskEvent[] = [],
  ) {
    this.#file = { path: eventsFile.path, offset: eventsFile.bytes };
    this.task = persisted.task;
    this.status = persisted.status;
    this.agentId = persisted.agentId;
    this.submittedAt = persisted.submittedAt;
    this.cancelRequested = persisted.cancelRequested;
    this.accepted = new Promise((resolve) => (this.#resolveAccepted = resolve));
    this.result = new Promise((resolve) => (this.#resolveResult = resolve));
    // Listeners of a busy task (followers, tests) easily pass the default warning threshold.
    this.#emitter.setMaxListeners(0);
    if (persisted.rejected !== undefined) this.answer(persisted.rejected);
    else if (persisted.status !== 'pending' && persisted.status !== 'pushed') {
      this.answer({ type: 'accepted', taskId: this.taskId });
    }
    for (const event of events) {
      this.store(event);
      this.#parsed.push(event);
    }
    this.acked = this.lastSeq;
  }

  get taskId(): string {
    return this.task.taskId;
  }

  /** Stored events, in seq order. */
  get events(): readonly TaskEvent[] {
    for (const text of this.#read()) this.#parsed.push(v.parse(eventSchema, JSON.parse(text)));
    return this.#parsed;
  }

  get lastSeq(): number {
    return this.#count;
  }

  /** The texts of the stored events not parsed yet, from the events file. */
  #read(): string[] {
    const file = this.#file;
    const wanted = this.#count - this.#parsed.length;
    if (wanted <= 0) return [];
    const fd = openSync(file.path, 'r');
    try {
      const content = Buffer.allocUnsafe(fstatSync(fd).size - file.offset);
      const length = readSync(fd, content, 0, content.length, file.offset);
      const texts: string[] = [];
      let start = 0;
      while (texts.length < wanted) {
        const end = content.indexOf(0x0a, start);
        if (end < 0 || end >= length) break;
        texts.push(content.toString('utf8', start, end));
        start = end + 1;
      }
      file.offset += start;
      return texts;
    } finally {
      closeSync(fd);
    }
  }

  get hasResult(): boolean {
    return this.#outcome !== undefined;
  }

  /** Counts against its agent's capacity. */
  get isActive(): boolean {
    return this.status === 'pushed' || this.status === 'accepted';
  }

  on<K extends keyof TaskRecordEvents>(
    event: K,
    listener: (...args: TaskRecordEvents[K]) => void,
  ): this {
    this.#emitter.on(event, listener);
    return this;
  }

  off<K extends keyof TaskRecordEvents>(
    event: K,
    listener: (...args: TaskRecordEvents[K]) => void,
  ): this {
    this.#emitter.off(event, listener);
    return this;
  }

  logLines(): string[] {
    return joinLogLines(this.events);
  }

  setStatus(status: TaskStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.#emitter.emit('status', status);
  }

  /** Records the agent's answer to the push; the first answer wins. */
  answer(answer: Accepted | Rejected): void {
    if (this.#answer !== undefined) return;
    this.#answer = answer;
    this.#resolveAccepted(answer);
  }

  /**
   * Counts the next event, which the caller checked (its seq) and already appended to the events
   * file, and finishes the task on `result`.
   */
  store(event: TaskEvent): void {
    this.#count += 1;
    if (event.kind === 'state') this.#phase = event.state;
    if (event.kind === 'result') this.#outcome = event.outcome;
    this.#emitter.emit('event', event);
    if (event.kind === 'result') {
      this.#resolveResult(event);
      this.setStatus('finished');
    }
  }

  /** Runs `work` after every earlier piece of work of this task: one writer per task's files. */
  serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  persisted(): PersistedTask {
    return {
      task: this.task,
      status: this.status,
      agentId: this.agentId,
      submittedAt: this.submittedAt,
      cancelRequested: this.cancelRequested,
      rejected: this.#answer?.type === 'rejected' ? this.#answer : undefined,
    };
  }

  summary(): TaskSummary {
    const rejected = this.#answer?.type === 'rejected' ? this.#answer : undefined;
    return {
      taskId: this.taskId,
      name: this.task.name,
      status: this.status,
      phase: this.#phase,
      outcome: this.#outcome,
      agentId: this.agentId,
      lastSeq: this.lastSeq,
      submittedAt: this.submittedAt,
      rejected,
    };
  }
}
