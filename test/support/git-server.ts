import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, freePort } from './registry.js';

const run = promisify(execFile);

/** `git daemon` on a free loopback port, serving bare repositories from a temp folder. */
export interface TestGitServer {
  /** git://127.0.0.1:PORT/<name>.git */
  url(name: string): string;
  /** Creates `<name>.git` (default branch main) with these files; returns the commit. */
  createRepo(name: string, files: Record<string, string>): Promise<string>;
  /** Commits these files (added or changed) on main and pushes; returns the new commit. */
  commit(name: string, files: Record<string, string>, tag?: string): Promise<string>;
  dispose(): Promise<void>;
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'cuttle test',
  GIT_AUTHOR_EMAIL: 'test@cuttle.invalid',
  GIT_COMMITTER_NAME: 'cuttle test',
  GIT_COMMITTER_EMAIL: 'test@cuttle.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: GIT_ENV });
  return stdout.trim();
}

/** Returns a reason string instead when git is not installed. */
export async function startGitServer(): Promise<TestGitServer | string> {
  if ((await findBinary(['git'])) === undefined)
    return 'git is not installed (apt-get install git)';
  const root = await mkdtemp(join(tmpdir(), 'cuttle-git-'));
  const served = join(root, 'served');
  await mkdir(served);
  const port = await freePort();
  const daemon: ChildProcess = spawn(
    'git',
    [
      'daemon',
      `--base-path=${served}`,
      '--export-all',
      '--reuseaddr',
      '--listen=127.0.0.1',
      `--port=${port}`,
      served,
    ],
    { stdio: 'ignore', env: GIT_ENV },
  );
  const url = (name: string): string => `git://127.0.0.1:${port}/${name}.git`;
  const work = (name: string): string => join(root, 'work', name);

  const commit = async (
    name: string,
    files: Record<string, string>,
    tag?: string,
  ): Promise<string> => {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(work(name), path)), { recursive: true });
      await writeFile(join(work(name), path), content);
    }
    await git(work(name), 'add', '-A');
    await git(work(name), 'commit', '-q', '-m', `change ${Object.keys(files).join(', ')}`);
    if (tag !== undefined) await git(work(name), 'tag', '-a', tag, '-m', tag);
    await git(work(name), 'push', '-q', '--follow-tags', 'origin', 'main');
    return git(work(name), 'rev-parse', 'HEAD');
  };

  const server: TestGitServer = {
    url,
    createRepo: async (name, files) => {
      const bare = join(served, `${name}.git`);
      await run('git', ['init', '-q', '--bare', '-b', 'main', bare], { env: GIT_ENV });
      await mkdir(work(name), { recursive: true });
      await git(work(name), 'init', '-q', '-b', 'main');
      await git(work(name), 'remote', 'add', 'origin', bare);
      return commit(name, files);
    },
    commit,
    dispose: async () => {
      if (daemon.exitCode === null) {
        const exited = new Promise((resolve) => daemon.once('exit', resolve));
        daemon.kill('SIGTERM');
        await exited;
      }
      await rm(root, { recursive: true, force: true });
    },
  };
  // Ready once it answers: an empty listing of a repository that does not exist fails, so probe
  // with a real one.
  await server.createRepo('probe', { README: 'probe\n' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await run('git', ['ls-remote', url('probe')], { env: GIT_ENV, timeout: 2_000 });
      return server;
    } catch (error) {
      if (Date.now() > deadline || daemon.exitCode !== null) {
        await server.dispose();
        throw new Error(`git daemon did not start on port ${port}: ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
