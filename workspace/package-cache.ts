/**
 * The content-addressed package cache, <home>/Packages/<sha256>. Files are read-only once in;
 * a step gets a hard link (no copy) at $PWD/packages/<name>. Least recently used files are evicted
 * beyond a size limit, never one a running step uses.
 */
import { chmod, copyFile, link, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, isNotFound } from './agent-home.js';
import { WorkspaceError } from './workspace-error.js';

export class PackageCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** A temporary path in the cache's folder, for a blob being received. */
  incomingPath(sha256: string): string {
    return join(this.dir, `.incoming-${sha256}`);
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(sha256))).isFile();
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Marks a received file read-only (it is shared by hard links). */
  async sealed(sha256: string): Promise<void> {
    await chmod(this.pathOf(sha256), 0o444);
  }

  /** Puts the package at <workFolder>/packages/<name>: a hard link, or a copy across devices. */
  async place(sha256: string, workFolder: string, name: string): Promise<string> {
    const folder = join(workFolder, 'packages');
    const target = join(folder, name);
    try {
      await mkdir(folder, { recursive: true });
      const source = this.pathOf(sha256);
      const now = new Date();
      await utimes(source, now, now); // recency for eviction
      try {
        await link(source, target);
      } catch {
        await copyFile(source, target);
        await chmod(target, 0o444);
      }
      return target;
    } catch (error) {
      throw new WorkspaceError(
        `cannot place package ${name} in ${folder}: ${describe(error)}`,
        target,
        {
          cause: error,
        },
      );
    }
  }

  /** Removes the least recently used packages until the cache holds at most `limitBytes`. */
  async evict(limitBytes: number, inUse: ReadonlySet<string>): Promise<string[]> {
    const entries = [];
    for (const name of await readdir(this.dir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const info = await stat(join(this.dir, name)).catch(() => undefined);
      if (info !== undefined) entries.push({ name, size: info.size, used: info.mtimeMs });
    }
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    const removed: string[] = [];
    for (const entry of entries.sort((a, b) => a.used - b.used)) {
      if (total <= limitBytes) break;
      if (inUse.has(entry.name)) continue;
      await rm(join(this.dir, entry.name), { force: true });
      total -= entry.size;
      removed.push(entry.name);
    }
    return removed;
  }
}
