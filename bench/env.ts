/**
 * The setting every case runs in: the reference server in a process of its own on 127.0.0.1
 * (server-child.ts), and the agent under measurement as a separate `node dist/agent/cli.js agent`
 * process, so that the CPU time and memory of each are their own. `dispose()` stops both and
 * removes what they left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../images/index.js';
import type { ResultEvent } from '../protocol/index.js';
import type { SubmitInput } from '../protocol/reference-server/index.js';
import { withTimeout } from './measure.js';
import { ServerProcess, type BenchEvent, type RemoteTask } from './server-process.js';

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
  handle: RemoteTask;
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
  server: ServerProcess;
  readonly dataDir: string;
  readonly home: string;
  readonly child: ChildProcess;
  readonly #options: BenchEnvOptions;
  #output = '';

  private constructor(
    docker: DockerClient,
    server: ServerProcess,
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
    const server = await startServer(dataDir, 0, options.heartbeatMs);
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

  /**
   * Submits a task and waits (bounded) for its result; anything but success is an error. `ms` is
   * from submit to the stored result, both as the server saw them.
   */
  async run(
    input: SubmitInput,
    timeoutMs = 60_000,
    options: { usualLineLength?: number; onTask?: (task: RemoteTask) => void } = {},
  ): Promise<TimedResult> {
    const handle = await this.server.submit(input, options);
    const { event: result, at } = await withTimeout(
      handle.result,
      timeoutMs,
      `the result of ${input.taskId}`,
    );
    if (result.outcome !== 'success') {
      throw new Error(
        `task ${input.taskId} ended ${result.outcome} (exit ${result.exitCode}): ` +
          `${result.error?.message ?? ''}\n${handle.logLines().slice(-10).join('\n')}`,
      );
    }
    return { handle, result, ms: at - handle.submittedAt };
  }

  /**
   * Stops the server process (the agent sees its connection end), waits `downMs`, and starts a new
   * one on the same port and data folder. Returns the moment it listens again (now()) and a
   * promise of the next hello.
   */
  async restartServer(downMs: number): Promise<{ upAt: number; hello: Promise<number> }> {
    const port = this.port;
    await this.server.close();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    const server = await startServer(this.dataDir, port, this.#options.heartbeatMs);
    // The agent may not dial before the server says it listens: its backoff waits 500 ms or more.
    const hello = new Promise<number>((resolve) => server.once('hello', resolve));
    this.server = server;
    return { upAt: server.listeningAt, hello };
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

function startServer(
  dataDir: string,
  port: number,
  heartbeatMs: number | undefined,
): Promise<ServerProcess> {
  return ServerProcess.start({
    token: BENCH_TOKEN,
    port,
    dataDir,
    ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
  });
}

/** Resolves with the time (now(), on the server's clock) at which the first event matching arrives. */
export function whenEvent(
  handle: RemoteTask,
  match: (event: BenchEvent) => boolean,
): Promise<number> {
  return new Promise((resolve) => {
    const listener = (event: BenchEvent, at: number): void => {
      if (!match(event)) return;
      handle.off('event', listener);
      resolve(at);
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
