// Host paths as dockerd will mount them. The policy checks, and the create request sends, the same
// resolved path, so a symbolic link cannot make the engine mount something other than what was
// checked (short of the link being swapped between the check and the create).
import { lstatSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';

/** Whether `path` is `folder` or inside it (both resolved; `/ab` is not inside `/a`). */
export function isInside(path: string, folder: string): boolean {
  return folder === '/' || path === folder || path.startsWith(`${folder}/`);
}

/**
 * The absolute path with `..` resolved and symbolic links followed in its longest existing prefix;
 * the missing rest is appended as written. That is where dockerd ends up: it cleans the path, then
 * creates a missing `-v` source with MkdirAll, which follows links in the part that exists.
 * Undefined when the path cannot be resolved (no permission to look, a link loop, a dangling link
 * or a file in the middle): dockerd, as root, might still follow it somewhere else.
 */
export function resolveHostPath(path: string): string | undefined {
  const missing: string[] = [];
  let existing = posix.resolve(path);
  for (;;) {
    try {
      return posix.join(realpathSync(existing), ...missing);
    } catch (error) {
      if (codeOf(error) !== 'ENOENT' || existing === '/' || exists(existing)) return undefined;
      missing.unshift(posix.basename(existing));
      existing = posix.dirname(existing);
    }
  }
}

/** Whether the name itself may exist (a dangling link does, though its target does not). */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    return codeOf(error) !== 'ENOENT';
  }
}

function codeOf(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined;
}
