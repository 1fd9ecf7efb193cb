/**
 * The tool store, <home>/Tools/<name>/<version>/: deployment tools (Calamari-like) unpacked from
 * their bundles (PROTOCOL.md section 7).
 *
 * A version folder only ever appears complete. A bundle is unpacked into
 * <name>/.incoming-<version>-<random> and renamed into place; a version being removed is first
 * renamed to <name>/.removing-<version>-<random>. Names starting with a dot are never tools, so
 * whatever a crash leaves behind is invisible until `removeIncomplete` deletes it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { CuttleError } from '../protocol/index.js';
import { describe, isNotFound } from './agent-home.js';
import { unpackToolArchive } from './tool-archive.js';
import { ToolInvalidError } from './tool-invalid-error.js';
import { WorkspaceError } from './workspace-error.js';

/** How many versions of each tool, not in use, `prune` keeps by default. */
export const DEFAULT_TOOL_VERSIONS_KEPT = 3;

const INCOMING_PREFIX = '.incoming-';
const REMOVING_PREFIX = '.removing-';
/** A tool name or version: a plain folder name, not hidden, no `/`, no `..`. */
const TOOL_ID = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;

export interface InstalledTool {
  name: string;
  version: string;
}

export class ToolStore {
  readonly dir: string;
  /** Installs under way, by "name@version": callers asking for the same tool share one. */
  readonly #installing = new Map<string, Promise<string>>();
  /** Temporary folders this store is using now, which `removeIncomplete` must leave alone. */
  readonly #busy = new Set<string>();

  constructor(toolsDir: string) {
    this.dir = toolsDir;
  }

  /** <toolsDir>/<name>/<version>, whether installed or not; refuses a name or version that is not a plain folder name. */
  pathOf(name: string, version: string): string {
    const invalid = toolIdProblem('name', name) ?? toolIdProblem('version', version);
    if (invalid !== undefined) throw invalid;
    return join(this.dir, name, version);
  }

  /** The tool's folder if it is installed (complete: a half-unpacked tool is never there). */
  async installedPath(name: string, version: string): Promise<string | undefined> {
    const path = this.pathOf(name, version);
    try {
      return (await stat(path)).isDirectory() ? path : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new WorkspaceError(`cannot look for the tool at ${path}: ${describe(error)}`, path, {
        cause: error,
      });
    }
  }

  /**
   * Installs the tool from its bundle (a .tar.gz file) unless it is installed already, and returns
   * its folder. Concurrent calls for the same name and version get the same promise: one unpack.
   * Rejects with ToolInvalidError for a bad name, version or bundle (nothing is left behind), and
   * with WorkspaceError when the bundle cannot be read or the folder cannot be written.
   */
  install(name: string, version: string, bundlePath: string): Promise<string> {
    return this.ensure(name, version, () => Promise.resolve(bundlePath));
  }

  /**
   * As `install`, but the bundle is only fetched (`fetchBundle` returns the path of the .tar.gz)
   * when the tool is missing, and once for all concurrent callers: two tasks needing the same
   * missing tool fetch and unpack it once. `fetchBundle`'s errors reach every caller unchanged.
   */
  ensure(name: string, version: string, fetchBundle: () => Promise<string>): Promise<string> {
    const invalid = toolIdProblem('name', name) ?? toolIdProblem('version', version);
    if (invalid !== undefined) return Promise.reject(invalid);
    const key = toolKey(name, version);
    const running = this.#installing.get(key);
    if (running !== undefined) return running;
    const install = this.#install(name, version, fetchBundle).finally(() => {
      this.#installing.delete(key);
    });
    this.#installing.set(key, install);
    return install;
  }

  /** Every installed tool, by name then version (oldest first), for `hello.capabilities.tools`. */
  async list(): Promise<InstalledTool[]> {
    const tools: InstalledTool[] = [];
    for (const name of await subfolders(this.dir)) {
      for (const version of await subfolders(join(this.dir, name))) {
        tools.push({ name, version });
      }
    }
    return tools.sort(
      (a, b) => compareStrings(a.name, b.name) || compareToolVersions(a.version, b.version),
    );
  }

  /**
   * Keeps, for each tool, the newest `keep` versions (semantic version order) that are not in
   * `inUse` ("name@version") and removes the older ones; versions in use or being installed are
   * never removed. Returns what was removed.
   */
  async prune(
    inUse: ReadonlySet<string>,
    keep: number = DEFAULT_TOOL_VERSIONS_KEPT,
  ): Promise<InstalledTool[]> {
    if (!Number.isInteger(keep) || keep < 0) {
      throw new CuttleError('internal', `cannot keep ${keep} tool versions: not a whole number`);
    }
    const byName = new Map<string, string[]>();
    for (const { name, version } of await this.list()) {
      byName.set(name, [...(byName.get(name) ?? []), version]);
    }
    const removed: InstalledTool[] = [];
    for (const [name, versions] of byName) {
      let kept = 0;
      for (const version of versions.sort((a, b) => compareToolVersions(b, a))) {
        const key = toolKey(name, version);
        if (inUse.has(key) || this.#installing.has(key)) continue;
        if (kept < keep) {
          kept += 1;
          continue;
        }
        if (await this.#remove(name, version)) removed.push({ name, version });
      }
    }
    return removed;
  }

  /**
   * Deletes what an interrupted install or removal left (<name>/.incoming-*, <name>/.removing-*);
   * meant for start-up, but safe at any time. Returns the folders deleted.
   */
  async removeIncomplete(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await subfolders(this.dir)) {
      const folder = join(this.dir, name);
      for (const entry of await entries(folder)) {
        if (!entry.startsWith(INCOMING_PREFIX) && !entry.startsWith(REMOVING_PREFIX)) continue;
        const path = join(folder, entry);
        if (this.#busy.has(path)) continue;
        await removeFolder(path);
        removed.push(path);
      }
    }
    return removed;
  }

  async #install(
    name: string,
    version: string,
    fetchBundle: () => Promise<string>,
  ): Promise<string> {
    const target = this.pathOf(name, version);
    if ((await this.installedPath(name, version)) !== undefined) return target;
    const bundlePath = await fetchBundle();
    const parent = join(this.dir, name);
    let temp: string;
    try {
      await mkdir(parent, { recursive: true });
      temp = await mkdtemp(join(parent, `${INCOMING_PREFIX}${version}-`));
    } catch (error) {
      throw new WorkspaceError(
        `cannot create a folder for tool ${name} ${version} in ${parent}: ${describe(error)}`,
        parent,
        { cause: error },
      );
    }
    this.#busy.add(temp);
    try {
      await unpackToolArchive(bundlePath, temp);
      await this.#moveIntoPlace(temp, target);
      return target;
    } catch (error) {
      if (error instanceof ToolInvalidError) {
        throw new ToolInvalidError(
          `the bundle of tool ${name} ${version} is refused: ${error.message}`,
          error.entry,
          { cause: error },
        );
      }
      throw error;
    } finally {
      // After a successful rename there is nothing left here; after a failure, the partial unpack.
      await rm(temp, { recursive: true, force: true }).catch(() => undefined);
      this.#busy.delete(temp);
    }
  }

  async #moveIntoPlace(temp: string, target: string): Promise<void> {
    try {
      await rename(temp, target);
    } catch (error) {
      // Another process installed it meanwhile: a non-empty folder is never replaced.
      if (isAlreadyThere(error) && (await stat(target).catch(() => undefined))?.isDirectory()) {
        return;
      }
      throw new WorkspaceError(`cannot move the tool into ${target}: ${describe(error)}`, target, {
        cause: error,
      });
    }
  }

  /** Renames the version out of sight, then deletes it. False when it was already gone. */
  async #remove(name: string, version: string): Promise<boolean> {
    const path = this.pathOf(name, version);
    const doomed = join(
      this.dir,
      name,
      `${REMOVING_PREFIX}${version}-${randomBytes(4).toString('hex')}`,
    );
    try {
      await rename(path, doomed);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new WorkspaceError(`cannot remove the tool at ${path}: ${describe(error)}`, path, {
        cause: error,
      });
    }
    this.#busy.add(doomed);
    try {
      await removeFolder(doomed);
    } finally {
      this.#busy.delete(doomed);
    }
    return true;
  }
}

/**
 * Orders tool versions oldest first: by semantic version when both are one (1.2.10 after 1.2.9),
 * otherwise a semantic version after any other, and others by string.
 */
export function compareToolVersions(a: string, b: string): number {
  const aValid = semver.valid(a) !== null;
  const bValid = semver.valid(b) !== null;
  if (aValid && bValid) return semver.compare(a, b) || compareStrings(a, b);
  if (aValid !== bValid) return aValid ? 1 : -1;
  return compareStrings(a, b);
}

/** The key a tool has in `prune`'s `inUse`: "name@version". */
export function toolKey(name: string, version: string): string {
  return `${name}@${version}`;
}

function toolIdProblem(what: 'name' | 'version', value: string): ToolInvalidError | undefined {
  if (!isToolId(value)) {
    return new ToolInvalidError(
      `the tool ${what} "${value.slice(0, 140)}" is not valid: use letters, digits and . _ + - (at most 128, not starting with a dot, no "..")`,
    );
  }
  return undefined;
}

function isToolId(value: string): boolean {
  return TOOL_ID.test(value) && !value.includes('..');
}

/** Subfolders that can be tools or versions: valid names, real folders (not links). */
async function subfolders(dir: string): Promise<string[]> {
  try {
    const found = await readdir(dir, { withFileTypes: true });
    return found
      .filter((entry) => entry.isDirectory() && isToolId(entry.name))
      .map((entry) => entry.name);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw new WorkspaceError(`cannot read the tools folder ${dir}: ${describe(error)}`, dir, {
      cause: error,
    });
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw new WorkspaceError(`cannot read the tools folder ${dir}: ${describe(error)}`, dir, {
      cause: error,
    });
  }
}

async function removeFolder(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (error) {
    throw new WorkspaceError(`cannot remove ${path}: ${describe(error)}`, path, { cause: error });
  }
}

function isAlreadyThere(error: unknown): boolean {
  return (
    error instanceof Error &&
    'code' in error &&
    (error.code === 'ENOTEMPTY' || error.code === 'EEXIST')
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
