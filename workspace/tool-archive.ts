/**
 * Unpacks a tool bundle (a .tar.gz) into an empty folder as a stream: one chunk in memory at a time,
 * whatever the size of the bundle.
 *
 * A hostile bundle cannot touch anything outside the folder:
 * - every entry is checked before anything is written for it: no absolute path, no `..` component,
 *   only files, folders, symbolic links and hard links (no devices, FIFOs or unknown types), no entry
 *   twice, no link whose target leaves the folder (a symbolic link's target is resolved from the
 *   link's folder, a hard link's from the top of the bundle, as tar does);
 * - nothing is ever written through a link: an entry whose path goes through an earlier symbolic link
 *   is refused, files are created with O_EXCL (which does not follow a link), so the only paths the
 *   kernel resolves are folders this unpack created itself;
 * - once every entry is in, each symbolic link is resolved again through the other links (a chain
 *   such as `a/s -> ..` plus `a/t -> s/..` leaves the folder only as a pair).
 *
 * File modes are kept without the setuid, setgid and sticky bits; folders always keep the owner's
 * rwx so the agent can remove them.
 */
import { createReadStream } from 'node:fs';
import { link, mkdir, open, symlink, chmod, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type ExtractEvents, type Header } from 'tar-stream';
import { CuttleError } from '../protocol/index.js';
import { describe } from './agent-home.js';
import { ToolInvalidError } from './tool-invalid-error.js';
import { WorkspaceError } from './workspace-error.js';

const PERMISSION_BITS = 0o777;
const OWNER_RWX = 0o700;
const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_FOLDER_MODE = 0o755;
/** Symbolic links followed while resolving one link, as Linux's MAXSYMLINKS. */
const MAX_LINK_HOPS = 40;

/** An entry of the archive: its header and a stream of its data. */
type Entry = ExtractEvents['entry'][1];

type Node = { kind: 'folder' } | { kind: 'file' } | { kind: 'symlink'; target: string };

/** Unpacks the .tar.gz at `archivePath` into `dir`, which must exist and be empty. */
export async function unpackToolArchive(archivePath: string, dir: string): Promise<void> {
  const source = createReadStream(archivePath);
  const gunzip = createGunzip();
  const entries = tarExtract();
  const unpacker = new Unpacker(dir);
  let readError: unknown;
  source.on('error', (error) => {
    readError = error;
    entries.destroy(error);
  });
  gunzip.on('error', (error) => {
    // Not attributed to an entry: the unpacking may still be behind the point where the data broke.
    entries.destroy(
      new ToolInvalidError(`the bundle is not complete gzip data (${error.message})`, undefined, {
        cause: error,
      }),
    );
  });
  let archiveError: unknown;
  entries.on('error', (error) => {
    archiveError ??= error;
  });
  source.pipe(gunzip).pipe(entries);

  try {
    for await (const entry of entries) {
      await unpacker.add(entry);
    }
    await unpacker.finish();
  } catch (error) {
    if (readError !== undefined) {
      throw new WorkspaceError(
        `cannot read the tool bundle ${archivePath}: ${describe(readError)}`,
        archivePath,
        { cause: readError },
      );
    }
    if (error instanceof CuttleError) throw error;
    if (archiveError instanceof CuttleError) throw archiveError;
    if (error instanceof Error && 'syscall' in error) {
      throw new WorkspaceError(`cannot unpack the tool into ${dir}: ${error.message}`, dir, {
        cause: error,
      });
    }
    // An entry's data stream only says it was destroyed; the archive says why.
    const cause = archiveError ?? error;
    const entry = unpacker.current;
    const where = entry === undefined ? '' : ` at entry "${entry}"`;
    throw new ToolInvalidError(
      `the bundle is not a valid tar archive${where} (${describe(cause)})`,
      entry,
      { cause },
    );
  } finally {
    source.destroy();
    gunzip.destroy();
    entries.destroy();
  }
}

class Unpacker {
  readonly #root: string;
  /** Everything created so far, by relative path ('' is the root): the truth about the folder. */
  readonly #nodes = new Map<string, Node>([['', { kind: 'folder' }]]);
  /** Folder modes, applied at the end so that read-only folders can still be filled. */
  readonly #folderModes = new Map<string, number>([['', DEFAULT_FOLDER_MODE]]);

  /** The entry being unpacked, until it is complete. */
  current: string | undefined;

  constructor(root: string) {
    this.#root = root;
  }

  async add(entry: Entry): Promise<void> {
    const { header } = entry;
    const name = header.name;
    this.current = name;
    await this.#add(entry, header, name);
    this.current = undefined;
  }

  async #add(entry: Entry, header: Header, name: string): Promise<void> {
    const parts = entryParts(name);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        await this.#file(parts, name, header, entry);
        return;
      case 'directory':
        // tar-stream gives a folder entry no data stream, so it is not drained.
        await this.#folder(parts, name, header);
        return;
      case 'symlink':
        await this.#symlink(parts, name, header);
        break;
      case 'link':
        await this.#hardLink(parts, name, header);
        break;
      default:
        throw invalid(
          name,
          `is ${typeName(header.type)}; a tool bundle may hold only files, folders and links`,
        );
    }
    for await (const _chunk of entry) {
      // A link has no data; anything there is skipped so the next entry can be read.
    }
  }

  /** Checks every symbolic link through all the others, then sets the folders' modes. */
  async finish(): Promise<void> {
    for (const [path, node] of this.#nodes) {
      if (node.kind !== 'symlink') continue;
      const problem = resolveInside(this.#nodes, path, node.target);
      if (problem !== undefined) {
        throw invalid(path, `is a link to "${node.target}", which ${problem}`);
      }
    }
    const deepestFirst = [...this.#folderModes].sort(
      ([a], [b]) => b.split('/').length - a.split('/').length || b.length - a.length,
    );
    for (const [path, mode] of deepestFirst) {
      await chmod(this.#pathOf(path.length === 0 ? [] : path.split('/')), mode);
    }
  }

  async #file(parts: string[], name: string, header: Header, entry: Entry): Promise<void> {
    this.#claim(parts, name);
    const mode = (header.mode ?? DEFAULT_FILE_MODE) & PERMISSION_BITS;
    await this.#makeParents(parts);
    // 'wx' is O_CREAT | O_EXCL: fails on anything already there, a link included, never follows one.
    const handle = await open(this.#pathOf(parts), 'wx', 0o600);
    try {
      this.#nodes.set(parts.join('/'), { kind: 'file' });
      for await (const chunk of entry) {
        await writeAll(handle, toBytes(chunk));
      }
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
  }

  async #folder(parts: string[], name: string, header: Header): Promise<void> {
    const key = parts.join('/');
    const existing = this.#nodes.get(key);
    if (existing !== undefined && existing.kind !== 'folder') {
      throw invalid(name, 'appears more than once in the bundle');
    }
    if (existing === undefined) {
      this.#checkParents(parts, name);
      await this.#makeParents(parts);
      await mkdir(this.#pathOf(parts), { mode: OWNER_RWX });
      this.#nodes.set(key, { kind: 'folder' });
    }
    this.#folderModes.set(
      key,
      ((header.mode ?? DEFAULT_FOLDER_MODE) & PERMISSION_BITS) | OWNER_RWX,
    );
  }

  async #symlink(parts: string[], name: string, header: Header): Promise<void> {
    const target = header.linkname ?? '';
    if (target.length === 0) throw invalid(name, 'is a link without a target');
    if (target.startsWith('/')) {
      throw invalid(name, `is a link to the absolute path "${target}"; links must be relative`);
    }
    this.#claim(parts, name);
    const resolved = posix.join(parts.slice(0, -1).join('/'), target);
    if (resolved === '..' || resolved.startsWith('../')) {
      throw invalid(name, `is a link to "${target}", which is outside the tool folder`);
    }
    await this.#makeParents(parts);
    await symlink(target, this.#pathOf(parts));
    this.#nodes.set(parts.join('/'), { kind: 'symlink', target });
  }

  async #hardLink(parts: string[], name: string, header: Header): Promise<void> {
    const target = header.linkname ?? '';
    if (target.length === 0) throw invalid(name, 'is a hard link without a target');
    if (target.startsWith('/')) {
      throw invalid(name, `is a hard link to the absolute path "${target}"`);
    }
    const targetParts = target.split('/').filter((part) => part !== '' && part !== '.');
    if (targetParts.includes('..')) {
      throw invalid(name, `is a hard link to "${target}", which is outside the tool folder`);
    }
    if (this.#nodes.get(targetParts.join('/'))?.kind !== 'file') {
      throw invalid(
        name,
        `is a hard link to "${target}", which is not a file earlier in the bundle`,
      );
    }
    this.#claim(parts, name);
    await this.#makeParents(parts);
    await link(this.#pathOf(targetParts), this.#pathOf(parts));
    this.#nodes.set(parts.join('/'), { kind: 'file' });
  }

  /** Refuses an entry for the root, for a path already taken, or below a link or a file. */
  #claim(parts: string[], name: string): void {
    if (parts.length === 0) throw invalid(name, 'names the tool folder itself');
    if (this.#nodes.has(parts.join('/'))) {
      throw invalid(name, 'appears more than once in the bundle');
    }
    this.#checkParents(parts, name);
  }

  #checkParents(parts: string[], name: string): void {
    for (let depth = 1; depth < parts.length; depth++) {
      const parent = parts.slice(0, depth).join('/');
      const node = this.#nodes.get(parent);
      if (node?.kind === 'symlink') {
        throw invalid(name, `goes through the link "${parent}"; nothing is written through a link`);
      }
      if (node?.kind === 'file') throw invalid(name, `is below "${parent}", which is a file`);
    }
  }

  /** Creates the missing parent folders; `#checkParents` has made sure none of them is a link. */
  async #makeParents(parts: string[]): Promise<void> {
    for (let depth = 1; depth < parts.length; depth++) {
      const parent = parts.slice(0, depth).join('/');
      if (this.#nodes.has(parent)) continue;
      await mkdir(this.#pathOf(parts.slice(0, depth)), { mode: OWNER_RWX });
      this.#nodes.set(parent, { kind: 'folder' });
      this.#folderModes.set(parent, DEFAULT_FOLDER_MODE);
    }
  }

  #pathOf(parts: string[]): string {
    return join(this.#root, ...parts);
  }
}

/** The components of a path inside the bundle, refusing absolute paths and `..`. */
function entryParts(path: string): string[] {
  if (path.length === 0) throw invalid(path, 'has an empty path');
  if (path.startsWith('/')) throw invalid(path, 'is an absolute path');
  if (path.includes('\0')) throw invalid(path, 'has a NUL character in its path');
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw invalid(path, 'has a ".." component, which could leave the tool folder');
  }
  return parts;
}

/**
 * Resolves a symbolic link the way the kernel will, following the bundle's other links; says why
 * not when the result leaves the folder or loops. A missing component is taken literally.
 */
function resolveInside(
  nodes: ReadonlyMap<string, Node>,
  linkPath: string,
  target: string,
): string | undefined {
  const current = linkPath.split('/').slice(0, -1);
  const pending = target.split('/').reverse();
  let hops = 0;
  for (let part = pending.pop(); part !== undefined; part = pending.pop()) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (current.length === 0) return 'leads outside the tool folder through other links';
      current.pop();
      continue;
    }
    current.push(part);
    const node = nodes.get(current.join('/'));
    if (node?.kind !== 'symlink') continue;
    hops += 1;
    if (hops > MAX_LINK_HOPS) return 'never resolves (a loop of links)';
    if (node.target.startsWith('/')) return 'leads to an absolute path';
    current.pop();
    pending.push(...node.target.split('/').reverse());
  }
  return undefined;
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset);
    offset += bytesWritten;
  }
}

function toBytes(chunk: unknown): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : Buffer.from(String(chunk));
}

/** The entry's type as tar-stream gives it: null for a type flag it does not know. */
function typeName(type: string | null | undefined): string {
  switch (type) {
    case 'character-device':
      return 'a character device';
    case 'block-device':
      return 'a block device';
    case 'fifo':
      return 'a FIFO';
    case null:
    case undefined:
      return 'an entry of an unknown type';
    default:
      return `an entry of type ${type}`;
  }
}

function invalid(entry: string, problem: string): ToolInvalidError {
  return new ToolInvalidError(`entry "${entry}" ${problem}`, entry);
}
