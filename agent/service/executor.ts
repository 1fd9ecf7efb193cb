/** Carries out a plan's actions on a host, in order; the first failure stops it. */
import {
  chmod,
  chown,
  lchown,
  mkdir,
  readdir,
  rename,
  rm,
  rmdir,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { hostPath, isErrno, lookupUser, run, type ServiceHost } from './host.js';
import type { Action } from './plan.js';
import { ServiceError } from './service-error.js';

export async function applyActions(
  host: ServiceHost,
  actions: readonly Action[],
  onAction: (action: Action) => void = () => undefined,
): Promise<void> {
  const owners = new Map<string, { uid: number; gid: number }>();
  // Resolved when first needed: a user created by an earlier action has an id by then.
  const ownerIds = async (owner: string): Promise<{ uid: number; gid: number }> => {
    if (owner === 'root') return { uid: 0, gid: 0 };
    let ids = owners.get(owner);
    if (ids === undefined) {
      const user = await lookupUser(host, owner);
      if (user === undefined) throw new ServiceError('command-failed', `no user ${owner}`);
      ids = { uid: user.uid, gid: user.gid };
      owners.set(owner, ids);
    }
    return ids;
  };
  for (const action of actions) {
    onAction(action);
    await apply(host, action, ownerIds);
  }
}

async function apply(
  host: ServiceHost,
  action: Action,
  ownerIds: (owner: string) => Promise<{ uid: number; gid: number }>,
): Promise<void> {
  switch (action.kind) {
    case 'create-user':
      // The home is made by a later action, with its mode; --user-group gives the user a group of
      // its own name as its primary group (the unit relies on that: it sets no Group=).
      await run(host, [
        'useradd',
        '--system',
        '--user-group',
        '--home-dir',
        action.home,
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        '--comment',
        'cuttle worker agent',
        ...(action.groups.length === 0 ? [] : ['--groups', action.groups.join(',')]),
        action.user,
      ]);
      return;
    case 'add-to-group':
      await run(host, ['usermod', '--append', '--groups', action.group, action.user]);
      return;
    case 'make-directory': {
      const path = hostPath(host, action.path);
      const { uid, gid } = await ownerIds(action.owner);
      await mkdir(path, { recursive: true, mode: action.mode });
      await chmod(path, action.mode);
      await chown(path, uid, gid);
      return;
    }
    case 'set-mode':
      await chmod(hostPath(host, action.path), action.mode);
      return;
    case 'set-owner': {
      const { uid, gid } = await ownerIds(action.owner);
      const path = hostPath(host, action.path);
      if (action.recursive === true) await chownTree(path, uid, gid);
      else await chown(path, uid, gid);
      return;
    }
    case 'write-file': {
      // Written beside the target with its final mode and owner, then renamed over it: the token
      // is never readable by anyone else, and a reader never sees half a file.
      const path = hostPath(host, action.path);
      const next = `${path}.cuttle-new`;
      const { uid, gid } = await ownerIds(action.owner);
      await rm(next, { force: true });
      await writeFile(next, action.content, { mode: action.mode, flag: 'wx' });
      await chmod(next, action.mode);
      await chown(next, uid, gid);
      await rename(next, path);
      return;
    }
    case 'remove': {
      const path = hostPath(host, action.path);
      if (action.what === 'empty-directory') {
        await rmdir(path).catch((error: unknown) => {
          if (isErrno(error) && (error.code === 'ENOTEMPTY' || error.code === 'ENOENT')) return;
          throw error;
        });
      } else {
        await rm(path, { recursive: action.what === 'tree', force: true });
      }
      return;
    }
    case 'delete-user':
      await run(host, ['userdel', action.user]);
      return;
    case 'systemctl':
      await run(host, ['systemctl', ...action.args]);
      return;
  }
}

/** chown -R without following symbolic links (a link is re-owned, never its target). */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await lchown(child, uid, gid);
  }
}
