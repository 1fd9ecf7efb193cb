/**
 * Maps a path as a step's container sees it to the file on the worker, for artifact collection.
 * Symbolic links are followed as the container would follow them (a link to /etc/passwd means the
 * container's /etc/passwd, which is not on the worker), and only paths inside folders bind-mounted
 * from the worker can be reached at all.
 */
import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';

export interface BindMount {
  hostPath: string;
  containerPath: string;
}

export type ResolvedPath =
  { ok: true; hostPath: string; size: number } | { ok: false; reason: string };

const MAX_LINKS = 40;

export async function resolveContainerFile(
  containerPath: string,
  mounts: readonly BindMount[],
): Promise<ResolvedPath> {
  if (!posix.isAbsolute(containerPath)) return { ok: false, reason: 'the path is not absolute' };
  // Walk the path one component at a time, so a link in the middle is followed too.
  let pending = splitComponents(containerPath);
  let current = '/';
  let links = 0;
  while (pending.length > 0) {
    const [head, ...rest] = pending;
    pending = rest;
    if (head === undefined || head === '.' || head === '') continue;
    if (head === '..') {
      current = posix.dirname(current);
      continue;
    }
    const next = posix.join(current, head);
    const host = toHost(next, mounts);
    if (host === undefined) {
      // Above every mount: only a folder on the way down to a mount is acceptable here.
      if (mounts.some((m) => isInsideFolder(m.containerPath, next))) {
        current = next;
        continue;
      }
      return { ok: false, reason: `${next} is not inside a folder mounted from the worker` };
    }
    let info;
    try {
      info = await lstat(host);
    } catch {
      return { ok: false, reason: `${next} does not exist` };
    }
    if (info.isSymbolicLink()) {
      if (++links > MAX_LINKS) return { ok: false, reason: 'too many symbolic links' };
      const target = await readlink(host);
      pending = [...splitComponents(target), ...pending];
      if (posix.isAbsolute(target)) current = '/';
      continue;
    }
    current = next;
    if (pending.length === 0) {
      if (!info.isFile()) return { ok: false, reason: `${current} is not a regular file` };
      return { ok: true, hostPath: host, size: info.size };
    }
    if (!info.isDirectory()) return { ok: false, reason: `${current} is not a folder` };
  }
  return { ok: false, reason: `${containerPath} is not a regular file` };
}

function splitComponents(path: string): string[] {
  return path.split('/').filter((c) => c !== '');
}

/** The worker path of a container path, through the innermost mount that holds it. */
function toHost(containerPath: string, mounts: readonly BindMount[]): string | undefined {
  let best: BindMount | undefined;
  for (const mount of mounts) {
    if (isInsideFolder(containerPath, mount.containerPath)) {
      if (best === undefined || mount.containerPath.length > best.containerPath.length)
        best = mount;
    }
  }
  if (best === undefined) return undefined;
  return posix.join(best.hostPath, posix.relative(best.containerPath, containerPath));
}

/**
 * True when `path` is `folder` or inside it, by their names (absolute paths; symbolic links are
 * not followed): /work/ab is not inside /work/a, and /work/a/..x is.
 */
export function isInsideFolder(path: string, folder: string): boolean {
  const relative = posix.relative(folder, path);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith('../') && !posix.isAbsolute(relative))
  );
}
