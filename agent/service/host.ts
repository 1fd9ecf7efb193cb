/**
 * What `cuttle service` reads and changes on the machine, behind a small seam: a filesystem root
 * (`/` on a real machine, a temporary folder in tests) and a command runner (useradd, systemctl…),
 * so tests can install for real into a temporary root and record or fake the commands.
 */
import { spawn } from 'node:child_process';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServiceError } from './service-error.js';

export interface ExecResult {
  /** The exit code; 127 when the program could not be started. */
  code: number;
  stdout: string;
  stderr: string;
}

export type Exec = (argv: readonly string[]) => Promise<ExecResult>;

export interface ServiceHost {
  /** Every path `cuttle service` reads or writes is under this prefix. */
  root: string;
  exec: Exec;
  /** May the process change the system (effective uid 0)? */
  isRoot: boolean;
}

export function systemHost(): ServiceHost {
  return { root: '/', exec: spawnExec, isRoot: process.geteuid?.() === 0 };
}

/** Runs a program without a shell; never rejects. */
export function spawnExec(argv: readonly string[]): Promise<ExecResult> {
  const [program, ...args] = argv;
  return new Promise((resolve) => {
    if (program === undefined) {
      resolve({ code: 127, stdout: '', stderr: 'no program given' });
      return;
    }
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', (error) =>
      resolve({ code: 127, stdout: '', stderr: `cannot run ${program}: ${error.message}` }),
    );
    child.once('close', (code, signal) =>
      resolve({
        code: code ?? (signal === null ? 1 : 128),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });
}

/** Runs a command that must succeed. */
export async function run(host: ServiceHost, argv: readonly string[]): Promise<ExecResult> {
  const result = await host.exec(argv);
  if (result.code !== 0) {
    const detail = (result.stderr.trim() || result.stdout.trim())
      .split('\n')
      .slice(0, 5)
      .join('; ');
    throw new ServiceError(
      'command-failed',
      `${argv.join(' ')} failed (exit ${result.code})${detail === '' ? '' : `: ${detail}`}`,
    );
  }
  return result;
}

/** A path as the host sees it. */
export function hostPath(host: ServiceHost, path: string): string {
  return join(host.root, path);
}

export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Names of every group the user is in, its primary group included. */
  groups: string[];
}

export async function lookupUser(host: ServiceHost, name: string): Promise<UserInfo | undefined> {
  const entry = await host.exec(['getent', 'passwd', name]);
  if (entry.code === 2) return undefined; // getent: key not found
  if (entry.code !== 0) {
    throw new ServiceError(
      'command-failed',
      `getent passwd ${name} failed (exit ${entry.code}): ${entry.stderr.trim()}`,
    );
  }
  const fields = entry.stdout.trim().split('\n')[0]?.split(':') ?? [];
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (fields.length < 7 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new ServiceError('command-failed', `getent passwd ${name}: unexpected answer`);
  }
  const groups = await run(host, ['id', '-nG', name]);
  return {
    name,
    uid,
    gid,
    home: fields[5] ?? '',
    groups: groups.stdout.trim().split(/\s+/).filter(Boolean),
  };
}

export async function groupExists(host: ServiceHost, name: string): Promise<boolean> {
  const entry = await host.exec(['getent', 'group', name]);
  if (entry.code === 0) return true;
  if (entry.code === 2) return false;
  throw new ServiceError(
    'command-failed',
    `getent group ${name} failed (exit ${entry.code}): ${entry.stderr.trim()}`,
  );
}

export interface PathState {
  kind: 'file' | 'directory' | 'other';
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** A file's text, when it was asked for and could be read. */
  content?: string;
}

/** A path's type, mode, owner (and text), or undefined when it does not exist. */
export async function inspectPath(
  host: ServiceHost,
  path: string,
  options: { read?: boolean } = {},
): Promise<PathState | undefined> {
  const full = hostPath(host, path);
  try {
    const stats = await lstat(full);
    const kind = stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
    const state: PathState = { kind, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
    if (options.read === true && kind === 'file') {
      const content = await readFile(full, 'utf8').catch(() => undefined);
      if (content !== undefined) state.content = content;
    }
    return state;
  } catch (error) {
    if (isErrno(error) && error.code === 'ENOENT') return undefined;
    throw error;
  }
}

export interface UnitState {
  enabled: boolean;
  active: boolean;
  /** What `systemctl is-active` answered (active, inactive, failed, activating, …). */
  activeState: string;
  enabledState: string;
}

export async function unitState(host: ServiceHost, unit: string): Promise<UnitState> {
  const enabled = await host.exec(['systemctl', 'is-enabled', unit]);
  const active = await host.exec(['systemctl', 'is-active', unit]);
  const enabledState = enabled.stdout.trim() || 'unknown';
  const activeState = active.stdout.trim() || 'unknown';
  return {
    enabled: enabledState === 'enabled',
    active: activeState === 'active',
    enabledState,
    activeState,
  };
}

export function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}
