/**
 * Per-step temp folders under <home>/Work, named <UTC yyyyMMddHHmmss>-<taskId>-<counter>
 * (PROTOCOL.md section 5). The same absolute path is the step's $PWD inside the container.
 */
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe } from './agent-home.js';
import { WorkspaceError } from './workspace-error.js';

/** The agent's own files for a step (script, launcher, output) live in this sub-folder. */
export const CONTROL_DIR = '.cuttle';

let counter = 0;

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

export function workFolderName(taskId: string, date: Date, count: number): string {
  return `${timestamp(date)}-${taskId.replace(/[^A-Za-z0-9_-]/g, '_')}-${count}`;
}

/** Creates a fresh, empty temp folder for a step and returns its absolute path. */
export async function createWorkFolder(workDir: string, taskId: string): Promise<string> {
  for (;;) {
    counter += 1;
    const path = join(workDir, workFolderName(taskId, new Date(), counter));
    try {
      // Not recursive: an existing folder of the same name must fail, so a folder is never shared.
      await mkdir(path);
      await mkdir(join(path, CONTROL_DIR));
      // The step may run as any user of its image. Other users of the host cannot reach the
      // folder anyway: the home above it is 0700.
      await chmod(path, 0o777);
      await chmod(join(path, CONTROL_DIR), 0o755);
      return path;
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'EEXIST') continue;
      throw new WorkspaceError(`cannot create the step folder ${path}: ${describe(error)}`, path, {
        cause: error,
      });
    }
  }
}

/**
 * Removes a step folder. Throws WorkspaceError when files are left (typically files the
 * container created as another user), so the caller can remove them through a container.
 */
export async function removeWorkFolder(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (error) {
    throw new WorkspaceError(`cannot remove the step folder ${path}: ${describe(error)}`, path, {
      cause: error,
    });
  }
}

/** The step folders present, for the sweep at start. */
export async function listWorkFolders(workDir: string): Promise<string[]> {
  const entries = await readdir(workDir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => join(workDir, e.name));
}

/** The taskId part of a folder name made by workFolderName (sanitized as in the name). */
export function workFolderTaskKey(name: string): string | undefined {
  const match = /^\d{14}-(.+)-\d+$/.exec(name);
  return match?.[1];
}
