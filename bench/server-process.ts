/**
 * The bench's handle on its reference server, which runs in a process of its own (server-child.ts):
 * tasks are submitted and followed over IPC, and every time comes from the server's clock, turned
 * into this process's `now()`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import type { ResultEvent, TaskEvent } from '../protocol/index.js';
import type { SubmitInput } from '../protocol/reference-server/index.js';
import { withTimeout } from './measure.js';
import {
  noticeSchema,
  type ForwardedLog,
  type ServerChildConfig,
  type ServerNotice,
  type ServerRequestBody,
} from './server-ipc.js';

const SERVER_CHILD = fileURLToPath(new URL('./server-child.js', import.meta.url));

/** A log event as the bench sees it: the lines that were forwarded, and how many there were. */
export interface BenchLog {
  kind: 'log';
  stream: string;
  lines: string[];
  lineCount: number;
  bytes: number;
}

/** An event as the bench sees it. */
export type BenchEvent = Exclude<TaskEvent, { kind: 'log' }> | BenchLog;

/** A server time (absolute ms) as this process's `now()`. */
function local(at: number): number {
  return at - performance.timeOrigin;
}

type RemoteTaskEvents = { event: [BenchEvent, number]; status: [string, number] };

/** A task submitted to the server process: its events, status and result as they arrive. */
export class RemoteTask extends EventEmitter<RemoteTaskEvents> {
  readonly taskId: string;
  status = 'submitting';
  /** When the server took the task (`now()`). */
  submittedAt = Number.NaN;
  /** Every event but the log's, in order. */
  readonly events: BenchEvent[] = [];
  /** Resolves with the result event and when the server stored it (`now()`). */
  readonly result: Promise<{ event: ResultEvent; at: number }>;
  #settle: (value: { event: ResultEvent; at: number }) => void = () => undefined;
  readonly #tail: string[] = [];

  constructor(taskId: string) {
    super();
    this.taskId = taskId;
    this.result = new Promise((resolve) => (this.#settle = resolve));
  }

  /** The last forwarded log lines, to explain a failure. */
  logLines(): string[] {
    return [...this.#tail];
  }

  receive(notice: ServerNotice): void {
    if (notice.type === 'status') {
      this.status = notice.status;
      this.emit('status', notice.status, local(notice.at));
    } else if (notice.type === 'log') {
      this.#receiveLog(notice);
    } else if (notice.type === 'event') {
      const { event } = notice;
      if (event.kind === 'log') return; // forwarded as 'log' notices only
      this.events.push(event);
      this.emit('event', event, local(notice.at));
      if (event.kind === 'result') this.#settle({ event, at: local(notice.at) });
    }
  }

  #receiveLog(notice: ForwardedLog): void {
    this.#tail.push(...notice.lines);
    this.#tail.splice(0, Math.max(0, this.#tail.length - 20));
    const { stream, lines, lineCount, bytes } = notice;
    this.emit('event', { kind: 'log', stream, lines, lineCount, bytes }, local(notice.at));
  }
}

type ServerProcessEvents = {
  hello: [number];
  'blob-request': [string];
  /** An agent's blob announced: its SHA-256, and when (`now()`). */
  'blob-begin': [string, number];
};

export class ServerProcess extends EventEmitter<ServerProcessEvents> {
  readonly url: string;
  /** When it listened (`now()`). */
  readonly listeningAt: number;
  readonly #child: ChildProcess;
  readonly #tasks = new Map<string, RemoteTask>();
  readonly #replies = new Map<number, (answer: ServerNotice | Error) => void>();
  #nextId = 1;

  private constructor(child: ChildProcess, url: string, listeningAt: number) {
    super();
    this.#child = child;
    this.url = url;
    this.listeningAt = listeningAt;
    child.on('message', (raw) => this.#receive(v.parse(noticeSchema, raw)));
    // A server that dies fails what waits on a reply; tasks fail by their own time limits.
    child.once('exit', (code, signal) => {
      const error = new Error(`the bench server exited (code ${code}, signal ${signal})`);
      for (const reply of this.#replies.values()) reply(error);
      this.#replies.clear();
    });
  }

  static async start(config: ServerChildConfig): Promise<ServerProcess> {
    const child = fork(SERVER_CHILD, [JSON.stringify(config)], {
      execArgv: (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const listening = new Promise<ServerProcess>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the bench server exited (code ${code})`)));
      child.once('message', (raw) => {
        const notice = v.parse(noticeSchema, raw);
        if (notice.type !== 'listening') {
          reject(new Error(`the bench server said ${notice.type} before listening`));
          return;
        }
        resolve(new ServerProcess(child, notice.url, local(notice.at)));
      });
    });
    return withTimeout(listening, 30_000, 'the bench server to listen');
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error('the bench server has no pid');
    return pid;
  }

  /**
   * Submits a task. Its RemoteTask exists before the request is sent, so a listener attached by
   * `onTask` misses none of its events.
   */
  async submit(
    input: SubmitInput,
    options: { usualLineLength?: number; onTask?: (task: RemoteTask) => void } = {},
  ): Promise<RemoteTask> {
    const task = new RemoteTask(input.taskId);
    this.#tasks.set(task.taskId, task);
    options.onTask?.(task);
    const { usualLineLength } = options;
    const { value } = await this.#request({
      op: 'submit',
      input,
      ...(usualLineLength === undefined ? {} : { usualLineLength }),
    }).catch((error: unknown) => {
      this.#tasks.delete(task.taskId);
      throw error;
    });
    const accepted = v.parse(v.object({ status: v.string(), submittedAt: v.number() }), value);
    // A status notice may have come first: it is newer than the reply's.
    if (task.status === 'submitting') task.status = accepted.status;
    task.submittedAt = local(accepted.submittedAt);
    return task;
  }

  async addBlob(path: string): Promise<{ sha256: string; size: number }> {
    const { value } = await this.#request({ op: 'add-blob', path });
    return v.parse(v.object({ sha256: v.string(), size: v.number() }), value);
  }

  async artifactPath(sha256: string): Promise<string> {
    const { value } = await this.#request({ op: 'artifact-path', sha256 });
    return v.parse(v.string(), value);
  }

  /** Cuts every agent connection; resolves with when it was done (`now()`). */
  async disconnectAll(): Promise<number> {
    return local((await this.#request({ op: 'disconnect-all' })).at);
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await this.#request({ op: 'close' }).catch(() => undefined);
    await withTimeout(exited, 15_000, 'the bench server to stop').catch(async () => {
      child.kill('SIGKILL');
      await exited;
    });
  }

  #request(request: ServerRequestBody): Promise<{ value: unknown; at: number }> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#replies.set(id, (answer) => {
        if (answer instanceof Error) reject(answer);
        else if (answer.type !== 'reply') return;
        else if (answer.error !== undefined) reject(new Error(answer.error));
        else resolve({ value: answer.value, at: answer.at });
      });
      this.#child.send({ ...request, id }, (error) => {
        if (error === null) return;
        this.#replies.delete(id);
        reject(error);
      });
    });
  }

  #receive(notice: ServerNotice): void {
    switch (notice.type) {
      case 'reply': {
        const reply = this.#replies.get(notice.id);
        this.#replies.delete(notice.id);
        reply?.(notice);
        return;
      }
      case 'hello':
        this.emit('hello', local(notice.at));
        return;
      case 'blob-request':
        this.emit('blob-request', notice.sha256);
        return;
      case 'blob-begin':
        this.emit('blob-begin', notice.sha256, local(notice.at));
        return;
      case 'listening':
        return;
      default:
        this.#tasks.get(notice.taskId)?.receive(notice);
    }
  }
}
