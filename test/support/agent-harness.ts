/**
 * End-to-end harness for the agent: a real reference server on a loopback port, a real agent with
 * a temp home (in-process with an in-memory log, or as a `cuttle agent` child process), and the
 * real Docker engine. Everything a test starts is stopped and removed by `dispose()`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chown, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import winston from 'winston';
import { Agent } from '../../agent/agent.js';
import { loadConfig, type AgentConfig } from '../../agent/config.js';
import type { Logger } from '../../agent/logger.js';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../../images/index.js';
import type {
  AgentMessage,
  ErrorMessage,
  LogStream,
  ResultEvent,
  TaskEvent,
  TaskState,
} from '../../protocol/index.js';
import {
  joinLogLines,
  ReferenceServer,
  type ReferenceServerOptions,
  type SubmitInput,
  type TaskHandle,
} from '../../protocol/reference-server/index.js';
import { sweepContainers } from './docker.js';
import { withTimeout } from './with-timeout.js';
import { eventually } from './eventually.js';

export { withTimeout };

/** The repository root, where `agent/cli.ts` lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const TEST_TOKEN = 'e2e-agent-token';

// ---- Small utilities -------------------------------------------------------------------------

/** A task id unique to this run, so nothing collides with a leftover of an earlier run. */
export function uniqueTaskId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A fresh temp folder, by its real path (the engine bind-mounts real paths). */
export async function makeTempDir(prefix: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `cuttle-e2e-${prefix}-`)));
}

export { eventually };

/** "1".."n" as strings. */
export function numbered(n: number, prefix = ''): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
}

/**
 * Asserts two long line lists are equal, naming the first difference instead of printing
 * thousands of lines.
 */
export function assertSameLines(actual: readonly string[], expected: readonly string[]): void {
  const length = Math.min(actual.length, expected.length);
  for (let i = 0; i < length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(
        `line ${i + 1} differs: got ${JSON.stringify(actual[i])}, expected ${JSON.stringify(expected[i])} ` +
          `(got ${actual.length} lines, expected ${expected.length}; around it: ` +
          `${JSON.stringify(actual.slice(Math.max(0, i - 2), i + 3))})`,
      );
    }
  }
  if (actual.length !== expected.length) {
    assert.fail(
      `got ${actual.length} lines, expected ${expected.length}; ` +
        `the extra or missing ones start with ${JSON.stringify((actual.length > expected.length ? actual : expected).slice(length, length + 5))}`,
    );
  }
}

// ---- Reading a task's events -----------------------------------------------------------------

/** The text of a task's stored log lines of one stream, partial pieces joined. */
export function streamLines(handle: TaskHandle, stream: LogStream): string[] {
  return joinLogLines(handle.events.filter((e) => e.kind === 'log' && e.stream === stream));
}

/** The states the task went through, in order. */
export function statesOf(handle: TaskHandle): TaskState[] {
  return handle.events.flatMap((e) => (e.kind === 'state' ? [e.state] : []));
}

/** The first stored event matching, or undefined. */
export function findEvent(
  handle: TaskHandle,
  match: (event: TaskEvent) => boolean,
): TaskEvent | undefined {
  return handle.events.find(match);
}

/** Resolves with the first event (stored already, or to come) that matches. */
export function waitForEvent(
  handle: TaskHandle,
  match: (event: TaskEvent) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<TaskEvent> {
  const found = handle.events.find(match);
  if (found !== undefined) return Promise.resolve(found);
  let listener: ((event: TaskEvent) => void) | undefined;
  const waiting = new Promise<TaskEvent>((resolve) => {
    listener = (event) => {
      if (match(event)) resolve(event);
    };
    handle.on('event', listener);
  });
  return withTimeout(waiting, timeoutMs, what).finally(() => {
    if (listener !== undefined) handle.off('event', listener);
  });
}

/** Resolves with the next message the agent sends that matches. */
export function waitForAgentMessage(
  server: ReferenceServer,
  match: (message: AgentMessage) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<AgentMessage> {
  let listener: ((message: AgentMessage) => void) | undefined;
  const waiting = new Promise<AgentMessage>((resolve) => {
    listener = (message) => {
      if (match(message)) resolve(message);
    };
    server.on('agent-message', listener);
  });
  return withTimeout(waiting, timeoutMs, what).finally(() => {
    if (listener !== undefined) server.off('agent-message', listener);
  });
}

/** Resolves with the next `error` the agent sends that matches. */
export function waitForAgentError(
  server: ReferenceServer,
  match: (message: ErrorMessage) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<ErrorMessage> {
  let listener: ((message: ErrorMessage) => void) | undefined;
  const waiting = new Promise<ErrorMessage>((resolve) => {
    listener = (message) => {
      if (match(message)) resolve(message);
    };
    server.on('agent-error', listener);
  });
  return withTimeout(waiting, timeoutMs, what).finally(() => {
    if (listener !== undefined) server.off('agent-error', listener);
  });
}

// ---- Tasks -----------------------------------------------------------------------------------

/** A `sh` step in the busybox demo image, which is built locally: pull policy `never`. */
export function demoTask(
  taskId: string,
  body: string,
  extra: Partial<Omit<SubmitInput, 'taskId' | 'script'>> = {},
): SubmitInput {
  return {
    taskId,
    name: `e2e ${taskId}`,
    script: { syntax: 'sh', body },
    container: { image: DEMO_IMAGE, pullPolicy: 'never' },
    ...extra,
  };
}

export interface FinishedTask {
  handle: TaskHandle;
  result: ResultEvent;
}

/** Submits a task, checks it was accepted, and waits (bounded) for its result. */
export async function runTask(
  server: ReferenceServer,
  input: SubmitInput,
  timeoutMs = 30_000,
): Promise<FinishedTask> {
  const handle = server.submit(input);
  const answer = await withTimeout(handle.accepted, timeoutMs, `the answer to ${input.taskId}`);
  assert.equal(answer.type, 'accepted', `task ${input.taskId} was not accepted`);
  const result = await withTimeout(handle.result, timeoutMs, `the result of ${input.taskId}`);
  return { handle, result };
}

// ---- The agent's log in memory -----------------------------------------------------------------

export interface LogRecord {
  level: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A winston logger whose records are kept in memory, so tests can assert on the agent's log. */
export class MemoryLog {
  readonly records: LogRecord[] = [];
  readonly logger: Logger;

  constructor(level = 'debug') {
    const stream = new Writable({
      objectMode: true,
      write: (chunk: unknown, _encoding, callback) => {
        this.records.push(toLogRecord(chunk));
        callback();
      },
    });
    this.logger = winston.createLogger({
      level,
      transports: [new winston.transports.Stream({ stream })],
    });
  }

  /** Each record as one line of text, meta included. */
  lines(): string[] {
    return this.records.map(
      (r) =>
        `${r.level} ${r.message}${Object.keys(r.meta).length === 0 ? '' : ` ${JSON.stringify(r.meta)}`}`,
    );
  }

  find(match: (record: LogRecord) => boolean): LogRecord | undefined {
    return this.records.find(match);
  }
}

function toLogRecord(chunk: unknown): LogRecord {
  if (typeof chunk !== 'object' || chunk === null) {
    return { level: 'unknown', message: String(chunk), meta: {} };
  }
  const meta: Record<string, unknown> = {};
  let level = 'unknown';
  let message = '';
  for (const [key, value] of Object.entries(chunk)) {
    if (key === 'level') level = String(value);
    else if (key === 'message') message = String(value);
    else meta[key] = value;
  }
  return { level, message, meta };
}

// ---- Server and in-process agent ---------------------------------------------------------------

export type ServerEnvOptions = Partial<Omit<ReferenceServerOptions, 'dataDir'>>;

export interface AgentEnvOptions {
  server?: ServerEnvOptions;
  /** Overrides of the agent's configuration (server, token and home are filled in). */
  agent?: Partial<AgentConfig>;
  /** Wait until the agent said hello to the server (default true). */
  waitConnected?: boolean;
}

/**
 * A reference server and one in-process agent connected to it. `dispose()` shuts the agent down,
 * closes the server, sweeps the agent's containers by label and removes the temp folders.
 */
export class AgentEnv {
  readonly docker: DockerClient;
  readonly server: ReferenceServer;
  readonly agent: Agent;
  readonly log: MemoryLog;
  /** Every hello the server received from this agent. */
  readonly hellos: readonly number[];
  readonly #dirs: string[];

  private constructor(
    docker: DockerClient,
    server: ReferenceServer,
    agent: Agent,
    log: MemoryLog,
    hellos: readonly number[],
    dirs: string[],
  ) {
    this.docker = docker;
    this.server = server;
    this.agent = agent;
    this.log = log;
    this.hellos = hellos;
    this.#dirs = dirs;
  }

  static async start(options: AgentEnvOptions = {}): Promise<AgentEnv> {
    const docker = DockerClient.connect();
    await ensureDemoImage(docker);
    const dataDir = await makeTempDir('server');
    const home = await makeTempDir('home');
    const server = new ReferenceServer({
      token: TEST_TOKEN,
      heartbeatMs: 2000,
      ...options.server,
      dataDir,
    });
    await server.listen();
    const hellos: number[] = [];
    server.on('hello', () => hellos.push(Date.now()));
    const log = new MemoryLog();
    let agent: Agent;
    try {
      agent = await Agent.start(
        {
          ...loadConfig({
            env: {},
            flags: {
              name: 'e2e-agent',
              graceSeconds: '0',
              server: server.url,
              token: TEST_TOKEN,
              home,
            },
          }),
          ...options.agent,
        },
        log.logger,
      );
    } catch (error) {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
      throw error;
    }
    const env = new AgentEnv(docker, server, agent, log, hellos, [dataDir, home]);
    if (options.waitConnected ?? true) {
      await env.waitConnected();
    }
    return env;
  }

  /** Resolves when the server lists this agent as connected. */
  async waitConnected(timeoutMs = 10_000): Promise<void> {
    await eventually(
      () => this.server.connectedAgents().some((a) => a.agentId === this.agent.id),
      'the agent to connect to the server',
      timeoutMs,
    );
  }

  run(input: SubmitInput, timeoutMs?: number): Promise<FinishedTask> {
    return runTask(this.server, input, timeoutMs);
  }

  /** Step containers of this agent still on the engine. */
  async containers(taskId?: string): Promise<string[]> {
    const list = await this.docker.listContainers({
      agentId: this.agent.id,
      ...(taskId === undefined ? {} : { taskId }),
    });
    return list.map((c) => c.id);
  }

  /** Prints the agent's log when the current test failed, to explain why. */
  reportOnFailure(context: Mocha.Context): void {
    if (context.currentTest?.state !== 'failed') return;
    const lines = this.log.lines();
    console.error(
      `--- agent log (last 40 of ${lines.length} records) ---\n${lines.slice(-40).join('\n')}\n---`,
    );
  }

  async dispose(): Promise<void> {
    await withTimeout(this.agent.shutdown(), 30_000, 'the agent to shut down').catch(
      (error: unknown) => console.error(`agent shutdown failed: ${String(error)}`),
    );
    await this.server.close();
    await sweepContainers(this.docker, this.agent.id).catch(() => undefined);
    for (const dir of this.#dirs) await rm(dir, { recursive: true, force: true });
  }
}

// ---- The agent as a child process ----------------------------------------------------------------

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly home: string;
  /** stdout and stderr so far, interleaved as received. */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the output once it matches. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Kills the process if it still runs (by its pid), sweeps its containers, removes its home. */
  dispose(): Promise<void>;
}

/**
 * Starts `cuttle agent` as a real process (node with the tsx loader, no npx in between, so a
 * signal reaches the agent itself). `--home` is a fresh temp folder unless given in `args`.
 */
export async function spawnAgentProcess(
  args: string[],
  options: { user?: { uid: number; gid: number } } = {},
): Promise<AgentProcess> {
  const home = await makeTempDir('proc-home');
  if (options.user !== undefined) await chown(home, options.user.uid, options.user.gid);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('CUTTLE_')) env[key] = value;
  }
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'agent', 'cli.ts'), 'agent', '--home', home, ...args],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], ...options.user },
  );
  let output = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const running = (): boolean => child.exitCode === null && child.signalCode === null;

  return {
    child,
    home,
    output: () => output,
    exited,
    waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
      if (pattern.test(output)) return Promise.resolve(output);
      let listener: (() => void) | undefined;
      const waiting = new Promise<string>((resolve) => {
        listener = () => {
          if (pattern.test(output)) resolve(output);
        };
        listeners.add(listener);
      });
      return withTimeout(
        waiting,
        timeoutMs,
        `agent output matching ${String(pattern)}; output so far:\n${output}`,
      ).finally(() => {
        if (listener !== undefined) listeners.delete(listener);
      });
    },
    async dispose(): Promise<void> {
      if (running()) {
        child.kill('SIGKILL');
        await withTimeout(exited, 10_000, 'the agent process to die').catch(() => undefined);
      }
      const agentId = await readFile(join(home, 'agent-id'), 'utf8').then(
        (text) => text.trim(),
        () => undefined,
      );
      if (agentId !== undefined) {
        await sweepContainers(DockerClient.connect(), agentId).catch(() => undefined);
      }
      await rm(home, { recursive: true, force: true });
    },
  };
}
