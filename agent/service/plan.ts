/**
 * Installing and uninstalling the service as a plan: a pure function from what the machine holds
 * (`InstallState`) to the list of actions that bring it to what is wanted. `--dry-run` prints the
 * plan; a plan that is empty means the machine is already as wanted (idempotency). Paths in
 * actions are as the service sees them (`/etc/cuttle/agent.json`); the executor adds the root.
 */
import type { PathState, UnitState, UserInfo } from './host.js';
import { ServiceError } from './service-error.js';
import { CONFIG_PATH, UNIT_NAME, UNIT_PATH } from './unit.js';

export type Action =
  | { kind: 'create-user'; user: string; home: string; groups: string[] }
  | { kind: 'add-to-group'; user: string; group: string }
  | { kind: 'make-directory'; path: string; mode: number; owner: string }
  | { kind: 'set-mode'; path: string; mode: number }
  | { kind: 'set-owner'; path: string; owner: string; recursive?: boolean }
  | {
      kind: 'write-file';
      path: string;
      content: string;
      mode: number;
      owner: string;
      /** What a dry run shows of the content (secrets redacted). */
      shown: string;
      replaces: boolean;
    }
  | { kind: 'remove'; path: string; what: 'file' | 'tree' | 'empty-directory' }
  | { kind: 'delete-user'; user: string }
  | { kind: 'systemctl'; args: string[]; note?: string };

/** What install wants on the machine. */
export interface InstallTarget {
  user: string;
  home: string;
  /** The group that grants the Docker socket. */
  dockerGroup: string;
  configText: string;
  /** configText with the token redacted. */
  configShown: string;
  unitText: string;
}

/** What the machine holds now (see `inspectInstall`). */
export interface InstallState {
  user: UserInfo | undefined;
  home: PathState | undefined;
  configDir: PathState | undefined;
  config: PathState | undefined;
  unitDir: PathState | undefined;
  unit: PathState | undefined;
  service: UnitState;
}

const CONFIG_DIR = '/etc/cuttle';
const UNIT_DIR = '/etc/systemd/system';
const HOME_MODE = 0o700;
const CONFIG_MODE = 0o600;
const UNIT_MODE = 0o644;
const DIR_MODE = 0o755;

export function planInstall(target: InstallTarget, state: InstallState): Action[] {
  const actions: Action[] = [];
  const { user } = target;
  const owns = (path: PathState, owner: 'root' | 'user'): boolean =>
    owner === 'root'
      ? path.uid === 0 && path.gid === 0
      : state.user !== undefined && path.uid === state.user.uid && path.gid === state.user.gid;

  if (state.user === undefined) {
    actions.push({
      kind: 'create-user',
      user,
      home: target.home,
      groups: [target.dockerGroup],
    });
  } else if (!state.user.groups.includes(target.dockerGroup)) {
    actions.push({ kind: 'add-to-group', user, group: target.dockerGroup });
  }

  // The home: 0700, the user's.
  if (state.home === undefined) {
    actions.push({ kind: 'make-directory', path: target.home, mode: HOME_MODE, owner: user });
  } else {
    if (state.home.kind !== 'directory') {
      throw new ServiceError(
        'conflict',
        `${target.home} exists and is not a folder; move it away or choose another home (--home)`,
      );
    }
    if (state.home.mode !== HOME_MODE)
      actions.push({ kind: 'set-mode', path: target.home, mode: HOME_MODE });
    // Recursive: a home first used by an agent run as root holds root's files the service cannot use.
    if (!owns(state.home, 'user'))
      actions.push({ kind: 'set-owner', path: target.home, owner: user, recursive: true });
  }

  // The configuration: 0600, the user's (it holds the token).
  if (state.configDir === undefined) {
    actions.push({ kind: 'make-directory', path: CONFIG_DIR, mode: DIR_MODE, owner: 'root' });
  }
  actions.push(
    ...planFile(
      {
        path: CONFIG_PATH,
        content: target.configText,
        shown: target.configShown,
        mode: CONFIG_MODE,
        owner: user,
      },
      state.config,
      owns(state.config ?? ROOTLESS, 'user'),
    ),
  );
  const configChanged = actions.some((a) => a.kind === 'write-file' && a.path === CONFIG_PATH);

  // The unit: 0644, root's.
  if (state.unitDir === undefined) {
    actions.push({ kind: 'make-directory', path: UNIT_DIR, mode: DIR_MODE, owner: 'root' });
  }
  const unitActions = planFile(
    {
      path: UNIT_PATH,
      content: target.unitText,
      shown: target.unitText,
      mode: UNIT_MODE,
      owner: 'root',
    },
    state.unit,
    owns(state.unit ?? ROOTLESS, 'root'),
  );
  actions.push(...unitActions);
  const unitChanged = unitActions.some((a) => a.kind === 'write-file');

  if (unitChanged) actions.push({ kind: 'systemctl', args: ['daemon-reload'] });
  const { enabled, active } = state.service;
  if (!enabled && !active) {
    actions.push({ kind: 'systemctl', args: ['enable', '--now', UNIT_NAME] });
  } else {
    if (!enabled) actions.push({ kind: 'systemctl', args: ['enable', UNIT_NAME] });
    if (!active) {
      actions.push({ kind: 'systemctl', args: ['start', UNIT_NAME] });
    } else if (unitChanged || configChanged || actions.some((a) => a.kind === 'add-to-group')) {
      actions.push({
        kind: 'systemctl',
        args: ['restart', UNIT_NAME],
        note: 'running steps get the grace period first',
      });
    }
  }
  return actions;
}

/** What uninstall finds (see `inspectUninstall`). */
export interface UninstallState {
  user: UserInfo | undefined;
  home: string;
  homeState: PathState | undefined;
  config: PathState | undefined;
  unit: PathState | undefined;
  service: UnitState;
}

export function planUninstall(state: UninstallState, options: { purge: boolean }): Action[] {
  const actions: Action[] = [];
  if (state.service.enabled || state.service.active) {
    actions.push({
      kind: 'systemctl',
      args: ['disable', '--now', UNIT_NAME],
      note: 'running steps get the grace period first',
    });
  }
  if (state.unit !== undefined) {
    actions.push({ kind: 'remove', path: UNIT_PATH, what: 'file' });
    actions.push({ kind: 'systemctl', args: ['daemon-reload'] });
  }
  if (!options.purge) return actions;
  if (state.config !== undefined) {
    actions.push({ kind: 'remove', path: CONFIG_PATH, what: 'file' });
    actions.push({ kind: 'remove', path: CONFIG_DIR, what: 'empty-directory' });
  }
  if (state.homeState !== undefined)
    actions.push({ kind: 'remove', path: state.home, what: 'tree' });
  if (state.user !== undefined) actions.push({ kind: 'delete-user', user: state.user.name });
  return actions;
}

/** A stand-in for a missing file in ownership checks. */
const ROOTLESS: PathState = { kind: 'other', mode: 0, uid: -1, gid: -1 };

function planFile(
  want: { path: string; content: string; shown: string; mode: number; owner: string },
  have: PathState | undefined,
  owned: boolean,
): Action[] {
  if (have === undefined || have.kind !== 'file' || have.content !== want.content) {
    return [{ kind: 'write-file', ...want, replaces: have !== undefined }];
  }
  const actions: Action[] = [];
  if (have.mode !== want.mode) actions.push({ kind: 'set-mode', path: want.path, mode: want.mode });
  if (!owned) actions.push({ kind: 'set-owner', path: want.path, owner: want.owner });
  return actions;
}

/** One line per action, in the imperative; a dry run prefixes "would". */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'create-user':
      return `create system user ${action.user} (home ${action.home}, no login shell, groups ${action.groups.join(', ')})`;
    case 'add-to-group':
      return `add user ${action.user} to group ${action.group}`;
    case 'make-directory':
      return `create folder ${action.path} (${octal(action.mode)}, owner ${action.owner})`;
    case 'set-mode':
      return `set the mode of ${action.path} to ${octal(action.mode)}`;
    case 'set-owner':
      return `give ${action.path}${action.recursive === true ? ' and everything in it' : ''} to ${action.owner}`;
    case 'write-file':
      return `${action.replaces ? 'rewrite' : 'write'} ${action.path} (${octal(action.mode)}, owner ${action.owner})`;
    case 'remove':
      return action.what === 'tree'
        ? `remove ${action.path} and everything in it`
        : action.what === 'empty-directory'
          ? `remove folder ${action.path} if it is empty`
          : `remove ${action.path}`;
    case 'delete-user':
      return `delete user ${action.user}`;
    case 'systemctl':
      return `run systemctl ${action.args.join(' ')}${action.note === undefined ? '' : ` (${action.note})`}`;
  }
}

export function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
