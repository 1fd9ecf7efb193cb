import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A private registry (Debian's docker-registry, i.e. distribution) with htpasswd authentication. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`, the prefix of image references. */
  host: string;
  username: string;
  password: string;
  /** Stops the process (the storage stays, so start() brings the same images back). */
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/** The first of these on PATH, or undefined. */
export async function findBinary(names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    try {
      const { stdout } = await run('sh', ['-c', 'command -v "$1"', 'sh', name]);
      if (stdout.trim() !== '') return stdout.trim();
    } catch {
      // not there
    }
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a registry on a free loopback port with a generated config and htpasswd file. Returns a
 * reason string instead when `docker-registry` or `htpasswd` is not installed.
 */
export async function startRegistry(): Promise<TestRegistry | string> {
  const binary = await findBinary(['docker-registry', 'registry']);
  const htpasswd = await findBinary(['htpasswd']);
  if (binary === undefined)
    return 'docker-registry is not installed (apt-get install docker-registry)';
  if (htpasswd === undefined) return 'htpasswd is not installed (apt-get install apache2-utils)';
  const dir = await mkdtemp(join(tmpdir(), 'cuttle-registry-'));
  const username = 'cuttle';
  const password = randomBytes(12).toString('hex');
  const { stdout } = await run(htpasswd, ['-Bbn', username, password]);
  await writeFile(join(dir, 'htpasswd'), stdout);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${host}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      'auth:',
      '  htpasswd:',
      '    realm: cuttle-test',
      `    path: ${join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    if (child !== undefined) return;
    const process = spawn(binary, ['serve', join(dir, 'config.yml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = process;
    process.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    process.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    process.once('exit', () => {
      if (child === process) child = undefined;
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`http://${host}/v2/`);
        if (response.status === 401) return;
      } catch {
        // not listening yet
      }
      if (child === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the test registry did not start on ${host}: ${output}`);
  };
  const stop = async (): Promise<void> => {
    const process = child;
    if (process === undefined) return;
    const exited = new Promise((resolve) => process.once('exit', resolve));
    process.kill('SIGTERM');
    const timer = setTimeout(() => process.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    child = undefined;
  };
  await start();
  return {
    host,
    username,
    password,
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What an ImageResolver told a task, in order. */
export type HookEvent =
  | { kind: 'state'; state: string }
  | { kind: 'progress'; activity: string; message: string; percent: number | undefined }
  | { kind: 'log'; level: string; lines: string[] };

/** ResolveHooks that record every call. */
export function recordingHooks(): {
  events: HookEvent[];
  lines: (level?: string) => string[];
  hooks: {
    state(state: 'pulling' | 'building'): Promise<void>;
    progress(activity: 'pull' | 'build', message: string, percent?: number): Promise<void>;
    log(level: 'verbose' | 'info' | 'warning', lines: string[]): Promise<void>;
  };
} {
  const events: HookEvent[] = [];
  return {
    events,
    lines: (level) =>
      events.flatMap((event) =>
        event.kind === 'log' && (level === undefined || event.level === level) ? event.lines : [],
      ),
    hooks: {
      state: async (state) => {
        events.push({ kind: 'state', state });
      },
      progress: async (activity, message, percent) => {
        events.push({ kind: 'progress', activity, message, percent });
      },
      log: async (level, lines) => {
        events.push({ kind: 'log', level, lines });
      },
    },
  };
}
