/**
 * The agent's home folder. Only this layer knows its layout:
 *   agent-id          the agent's stable id, generated once
 *   Work/             per-step temp folders
 *   Journal/<taskId>/ the task and its event journal, while the task is held
 *   Tools/, Packages/ caches (later issues)
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { WorkspaceError } from './workspace-error.js';

export class AgentHome {
  readonly root: string;
  readonly workDir: string;
  readonly journalDir: string;
  readonly toolsDir: string;
  readonly packagesDir: string;
  readonly agentId: string;

  private constructor(root: string, agentId: string) {
    this.root = root;
    this.workDir = join(root, 'Work');
    this.journalDir = join(root, 'Journal');
    this.toolsDir = join(root, 'Tools');
    this.packagesDir = join(root, 'Packages');
    this.agentId = agentId;
  }

  /** Creates the folder tree (home 0700) if needed and reads or generates the agent id. */
  static async open(root: string): Promise<AgentHome> {
    const home = resolve(root);
    try {
      await mkdir(home, { recursive: true, mode: 0o700 });
      // mkdir's mode applies only to folders it creates; an existing home is tightened too.
      await chmod(home, 0o700);
      for (const sub of ['Work', 'Journal', 'Tools', 'Packages']) {
        await mkdir(join(home, sub), { recursive: true, mode: 0o700 });
      }
    } catch (error) {
      throw new WorkspaceError(
        `cannot create the agent home ${home}: ${describe(error)}; give the agent's user write access or choose another --home`,
        home,
        { cause: error },
      );
    }
    return new AgentHome(home, await readOrCreateAgentId(home));
  }
}

async function readOrCreateAgentId(home: string): Promise<string> {
  const path = join(home, 'agent-id');
  try {
    const id = (await readFile(path, 'utf8')).trim();
    if (/^[A-Za-z0-9._-]{1,128}$/.test(id)) return id;
    throw new WorkspaceError(
      `the agent id in ${path} is not valid ("${id.slice(0, 40)}"); delete the file to generate a new one`,
      path,
    );
  } catch (error) {
    if (error instanceof WorkspaceError) throw error;
    if (!isNotFound(error)) {
      throw new WorkspaceError(`cannot read ${path}: ${describe(error)}`, path, { cause: error });
    }
  }
  const id = `cuttle-${randomUUID()}`;
  const temp = `${path}.tmp`;
  await writeFile(temp, `${id}\n`, { mode: 0o600 });
  await rename(temp, path);
  return id;
}

export function isNotFound(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
