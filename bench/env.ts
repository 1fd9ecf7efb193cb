/**
 * The setting every case runs in: the reference server in this process on 127.0.0.1, and the agent
 * under measurement as a separate `node dist/agent/cli.js agent` process, so that its CPU time and
 * memory are its own. `dispose()` stops both and removes what they left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../images/index.js';
import type { ResultEvent, TaskEvent } from '../protocol/index.js';
import {
  ReferenceServer,
  type SubmitInput,
  type TaskHandle,
} from '../protocol/reference-server/index.js';
import { now, withTimeout } from './measure.js';

export const BENCH_TOKEN = 'bench-token';

/** dist/agent/cli.js, next to this file's compiled folder. */
const AGENT_CLI = fileURLToPath(new URL('../agent/cli.js', import.meta.url));

export async function makeTempDir(prefix: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `cuttle-bench-${prefix}-`)));
}

export function uniqueId(prefix: string): string {
  return `bench-${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A trivial `sh` step in the local busybox image (pull policy never). */
export function demoTask(
  taskId: string,
  body: string,
  extra: Partial<SubmitInput> = {},
): SubmitInput {
  return {
    taskId,
    name: taskId,
    script: { syntax: 'sh', body },
    container: { image: DEMO_IMAGE, pullPolicy: 'never' },
    ...extra,
  };
}

export interface TimedResult {
  handle: TaskHandle;
  result: ResultEvent;
  /** From submit (the server pushes at once when the agent has room) to the stored result. */
  ms: number;
}

export interface BenchEnvOptions {
  capacity?: number;
  /** Server heartbeat; the protocol's default (15 s) unless given. */
  heartbeatMs?: number;
  extraArgs?: string[];
}

export class BenchEnv {
  readonly docker: DockerClient;
  server: ReferenceServer;
  readonly dataDir: string;
  readonly home: string;
  readonly child: ChildProcess;
  readonly #options: BenchEnvOptions;
  #output = '';

  private constructor(
    docker: DockerClient,
    server: ReferenceServer,
    dataDir: string,
    home: string,
    child: ChildProcess,
    options: BenchEnvOptions,
  ) {
    this.docker = docker;
    this.server = server;
    this.dataDir = dataDir;
    this.home = home;
    this.child = child;
    this.#options = options;
    const append = (chunk: Buffer): void => {
      // Keep the tail only: enough to explain a failure.
      this.#output = (this.#output + chunk.toString('utf8')).slice(-16_384);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  static async start(options: BenchEnvOptions = {}): Promise<BenchEnv> {
    const docker = DockerClient.connect();
    await ensureDemoImage(docker);
    const dataDir = await makeTempDir('server');
    const home = await makeTempDir('home');
    const server = newServer(dataDir, 0, options.heartbeatMs);
    await server.listen();
    const hello = new Promise<void>((resolve) => server.once('hello', () => resolve()));
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('CUTTLE_')) env[key] = value;
    }
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs(),
        AGENT_CLI,
        'agent',
        '--server',
        server.url,
        '--token',
        BENCH_TOKEN,
        '--home',
        home,
        '--name',
        'bench-agent',
        '--capacity',
        String(options.capacity ?? 1),
        '--grace-seconds',
        '0',
        ...(options.extraArgs ?? []),
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const bench = new BenchEnv(docker, server, dataDir, home, child, options);
    const exited = new Promise<never>((_resolve, reject) =>
      child.once('exit', (code, signal) =>
        reject(
          new Error(
            `the agent exited (code ${code}, signal ${signal}) before saying hello:\n${bench.output}`,
          ),
        ),
      ),
    );
    try {
      await withTimeout(Promise.race([hello, exited]), 30_000, 'the agent to say hello');
    } catch (error) {
      await bench.dispose();
      throw error;
    }
    return bench;
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('the agent process has no pid');
    return pid;
  }

  /** The agent's stdout and stderr (the last 16 KiB). */
  get output(): string {
    return this.#output;
  }

  get port(): number {
    return Number(new URL(this.server.url).port);
  }

  /** Submits a task and waits (bounded) for its result; anything but success is an error. */
  async run(
    input: SubmitInput,
    timeoutMs = 60_000,
    onSubmitted?: (handle: TaskHandle) => void,
  ): Promise<TimedResult> {
    const start = now();
    const handle = this.server.submit(input);
    onSubmitted?.(handle);
    const result = await withTimeout(handle.result, timeoutMs, `the result of ${input.taskId}`);
    const ms = now() - start;
    if (result.outcome !== 'success') {
      throw new Error(
        `task ${input.taskId} ended ${result.outcome} (exit ${result.exitCode}): ` +
          `${result.error?.message ?? ''}\n${handle.logLines().slice(-10).join('\n')}`,
      );
    }
    return { handle, result, ms };
  }

  /**
   * Closes the server (the agent sees 1001), waits `downMs`, and starts a new one on the same port
   * and data folder. Returns the moment it listens again (now()) and a promise of the next hello.
   */
  async restartServer(downMs: number): Promise<{ upAt: number; hello: Promise<number> }> {
    const port = this.port;
    await this.server.close();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    const server = newServer(this.dataDir, port, this.#options.heartbeatMs);
    const hello = new Promise<number>((resolve) => server.once('hello', () => resolve(now())));
    await server.listen();
    const upAt = now();
    this.server = server;
    return { upAt, hello };
  }

  async dispose(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await withTimeout(exited, 15_000, 'the agent to stop').catch(async () => {
        child.kill('SIGKILL');
        await exited;
      });
    }
    await this.server.close().catch(() => undefined);
    const agentId = await readFile(join(this.home, 'agent-id'), 'utf8').then(
      (text) => text.trim(),
      () => undefined,
    );
    if (agentId !== undefined) {
      const leftovers = await this.docker.listContainers({ agentId }).catch(() => []);
      for (const container of leftovers) {
        await this.docker.remove(container.id).catch(() => undefined);
      }
    }
    await rm(this.home, { recursive: true, force: true });
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Extra node flags for the agent process, from BENCH_AGENT_NODE_ARGS, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the agent while a case runs.
 */
function nodeArgs(): string[] {
  return (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
}

function newServer(
  dataDir: string,
  port: number,
  heartbeatMs: number | undefined,
): ReferenceServer {
  return new ReferenceServer({
    token: BENCH_TOKEN,
    host: '127.0.0.1',
    port,
    dataDir,
    ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
  });
}

/** Resolves with the time (now()) at which the first event matching arrives. */
export function whenEvent(
  handle: TaskHandle,
  match: (event: TaskEvent) => boolean,
): Promise<number> {
  return new Promise((resolve) => {
    const listener = (event: TaskEvent): void => {
      if (!match(event)) return;
      handle.off('event', listener);
      resolve(now());
    };
    handle.on('event', listener);
  });
}

/** Runs a case body with an environment that is always disposed. */
export async function withEnv<T>(
  options: BenchEnvOptions,
  body: (env: BenchEnv) => Promise<T>,
): Promise<T> {
  const env = await BenchEnv.start(options);
  try {
    return await body(env);
  } catch (error) {
    const tail = env.output.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${String(error)}${tail === '' ? '' : `\n--- agent output ---\n${tail}`}`, {
      cause: error,
    });
  } finally {
    await env.dispose();
  }
}
