/**
 * `cuttle service install|uninstall|status`: runs the agent as a systemd service, as
 * `gitlab-runner install` or the Actions runner's `svc.sh` do. Install takes the agent's own
 * settings (`--config FILE` and/or the agent's flags), validates them as `cuttle agent` would, and
 * plans: a system user in the docker group, its home (0700), /etc/cuttle/agent.json (0600, the
 * user's: it holds the token), the unit, daemon-reload, enable and start. `--dry-run` prints the
 * plan; running it again plans nothing and says so.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import * as v from 'valibot';
import { configSchema, type AgentConfig } from '../config.js';
import { withFlagErrors } from '../parse-flags.js';
import { applyActions } from '../service/executor.js';
import {
  groupExists,
  hostPath,
  inspectPath,
  lookupUser,
  systemHost,
  unitState,
  type PathState,
  type ServiceHost,
} from '../service/host.js';
import {
  describeAction,
  octal,
  planInstall,
  planUninstall,
  type Action,
  type InstallTarget,
} from '../service/plan.js';
import { ServiceError } from '../service/service-error.js';
import {
  CONFIG_PATH,
  DEFAULT_SERVICE_USER,
  DEFAULT_UNIT_OPTIONS,
  renderUnit,
  UNIT_NAME,
  UNIT_PATH,
} from '../service/unit.js';
import { AGENT_FLAGS, configFromArgs } from './agent-command.js';

export interface ServiceCommandOptions {
  /** The machine to change; the real one by default. */
  host?: ServiceHost;
  /** Where CUTTLE_* settings are read from, as for `cuttle agent`. */
  env?: NodeJS.ProcessEnv;
  /** The program and arguments the unit runs cuttle with; found from this installation by default. */
  command?: readonly string[];
  out?: (line: string) => void;
  err?: (line: string) => void;
}

const DOCKER_GROUP = 'docker';
const SERVICE_FLAGS = {
  user: { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const;
const UNINSTALL_FLAGS = { ...SERVICE_FLAGS, purge: { type: 'boolean' } } as const;
const STATUS_FLAGS = { user: { type: 'string' } } as const;

export const SERVICE_USAGE = `usage:
  cuttle service install [--config FILE] [agent flags…] [--user cuttle] [--dry-run]
  cuttle service uninstall [--purge] [--user cuttle] [--dry-run]
  cuttle service status [--user cuttle]`;

/** Folders ProtectHome=, PrivateTmp= or PrivateDevices= hide from (or fake for) the service. */
const HIDDEN_FROM_SERVICE = [
  '/home',
  '/root',
  '/run/user',
  '/tmp',
  '/var/tmp',
  '/dev',
  '/proc',
  '/sys',
];
/** Never a home: giving one of these to the agent (mode 0700, owner cuttle) would break the system. */
const SYSTEM_FOLDERS = new Set([
  '/var/lib',
  '/var/cache',
  '/var/log',
  '/var/run',
  '/var/spool',
  '/var/mail',
  '/usr/bin',
  '/usr/lib',
  '/usr/local',
  '/usr/sbin',
  '/usr/share',
  '/etc/cuttle',
  '/etc/systemd',
  '/run/systemd',
]);

export async function serviceCommand(
  args: string[],
  options: ServiceCommandOptions = {},
): Promise<number> {
  const ctx = {
    host: options.host ?? systemHost(),
    env: options.env ?? process.env,
    command: options.command ?? defaultCommand(),
    out: options.out ?? ((line: string) => console.log(line)),
    err: options.err ?? ((line: string) => console.error(line)),
  };
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'install':
        return await install(rest, ctx);
      case 'uninstall':
        return await uninstall(rest, ctx);
      case 'status':
        return await status(rest, ctx);
      default:
        throw new ServiceError(
          'usage',
          `${sub === undefined ? 'give a sub-command' : `unknown sub-command "${sub}"`}\n${SERVICE_USAGE}`,
        );
    }
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    ctx.err(`cuttle service: ${error.message} [${error.code}]`);
    return error.code === 'usage' ? 2 : 1;
  }
}

type Context = Required<Omit<ServiceCommandOptions, 'command'>> & { command: readonly string[] };

async function install(args: string[], ctx: Context): Promise<number> {
  const { user, dryRun, agentArgs } = parseInstallArgs(args);
  const { host } = ctx;
  const existing = hostPath(host, CONFIG_PATH);
  let configArgs = agentArgs;
  if (agentArgs.length === 0) {
    if (!existsSync(existing)) {
      throw new ServiceError(
        'usage',
        `give the agent's settings: --config FILE, or its flags (--server URL --token-file FILE …), as for cuttle agent\n${SERVICE_USAGE}`,
      );
    }
    ctx.out(`using the settings in ${CONFIG_PATH}`);
    configArgs = ['--config', existing];
  }
  const config = configFromArgs(configArgs, ctx.env);
  checkServicePaths(config, ctx.command);
  await checkCanChange(ctx, dryRun, { dockerGroup: true });

  const target: InstallTarget = {
    user,
    home: config.home,
    dockerGroup: DOCKER_GROUP,
    configText: configFileText(config),
    configShown: configFileText({ ...config, token: '<redacted>' }),
    unitText: renderUnit({
      user,
      home: config.home,
      configPath: CONFIG_PATH,
      command: ctx.command,
      graceSeconds: config.graceSeconds,
    }),
  };
  const state = {
    user: await lookupUser(host, user),
    home: await inspectPath(host, config.home),
    configDir: await inspectPath(host, '/etc/cuttle'),
    config: await inspectPath(host, CONFIG_PATH, { read: true }),
    unitDir: await inspectPath(host, '/etc/systemd/system'),
    unit: await inspectPath(host, UNIT_PATH, { read: true }),
    service: await unitState(host, UNIT_NAME),
  };
  if (state.user !== undefined && state.user.home !== config.home) {
    ctx.out(
      `note: user ${user} exists with home ${state.user.home}; the agent uses ${config.home} (its "home" setting)`,
    );
  }
  const actions = planInstall(target, state);
  if (actions.length === 0) {
    ctx.out(
      `nothing to change: ${UNIT_NAME} is installed, enabled and running as ${user} with these settings`,
    );
    return 0;
  }
  await perform(ctx, actions, dryRun);
  if (!dryRun) {
    ctx.out(
      `installed: ${UNIT_NAME} is enabled and running as ${user}; follow it with journalctl -u cuttle-agent -f`,
    );
  }
  return 0;
}

async function uninstall(args: string[], ctx: Context): Promise<number> {
  const { values } = withFlagErrors(UNINSTALL_FLAGS, () =>
    parseArgs({ args, options: UNINSTALL_FLAGS, strict: true, allowPositionals: false }),
  );
  const user = checkUserName(values.user ?? DEFAULT_SERVICE_USER);
  const dryRun = values['dry-run'] === true;
  const purge = values.purge === true;
  const { host } = ctx;
  await checkCanChange(ctx, dryRun, { dockerGroup: false });
  const account = await lookupUser(host, user);
  const config = await inspectPath(host, CONFIG_PATH, { read: true });
  const home = homeOf(config) ?? account?.home ?? DEFAULT_UNIT_OPTIONS.home;
  if (purge && !isServiceHome(home)) {
    throw new ServiceError(
      'unusable-path',
      `the home to purge, ${home}, is not one cuttle service install would have made; remove it yourself`,
    );
  }
  const actions = planUninstall(
    {
      user: account,
      home,
      homeState: await inspectPath(host, home),
      config,
      unit: await inspectPath(host, UNIT_PATH),
      service: await unitState(host, UNIT_NAME),
    },
    { purge },
  );
  if (actions.length === 0) {
    ctx.out(
      `nothing to remove: ${UNIT_NAME} is not installed${purge ? '' : ' (--purge also removes the settings, the home and the user)'}`,
    );
    return 0;
  }
  if (purge) {
    ctx.out(
      `warning: --purge removes ${home}, with the journals of results the server has not acknowledged yet`,
    );
  }
  await perform(ctx, actions, dryRun);
  if (!dryRun && !purge) {
    ctx.out(
      `uninstalled ${UNIT_NAME}; kept ${CONFIG_PATH}, ${home} and user ${user} (--purge removes them)`,
    );
  }
  return 0;
}

/** Prints the state; exits 0 when running, 3 when installed but not running, 4 when not installed. */
async function status(args: string[], ctx: Context): Promise<number> {
  const { values } = withFlagErrors(STATUS_FLAGS, () =>
    parseArgs({ args, options: STATUS_FLAGS, strict: true, allowPositionals: false }),
  );
  const user = checkUserName(values.user ?? DEFAULT_SERVICE_USER);
  const { host, out } = ctx;
  const unit = await inspectPath(host, UNIT_PATH);
  const config = await inspectPath(host, CONFIG_PATH, { read: true });
  const account = await lookupUser(host, user);
  const home = homeOf(config) ?? account?.home ?? DEFAULT_UNIT_OPTIONS.home;
  const homeState = await inspectPath(host, home);
  const systemd = existsSync(hostPath(host, '/run/systemd/system'));
  const service = await unitState(host, UNIT_NAME);
  const owner = (path: PathState): string =>
    account !== undefined && path.uid === account.uid ? user : `uid ${path.uid}`;

  out(
    `${UNIT_NAME}: ${systemd ? `${service.activeState} (${service.enabledState})` : 'systemd is not running here (no /run/systemd/system)'}`,
  );
  out(`unit:    ${UNIT_PATH}${unit === undefined ? ' is missing' : ''}`);
  out(
    `config:  ${CONFIG_PATH}${config === undefined ? ' is missing' : ` (${octal(config.mode)}, ${owner(config)})${config.mode & 0o077 ? ' warning: readable by others; it holds the token (chmod 600)' : ''}`}`,
  );
  out(
    `user:    ${account === undefined ? `${user} does not exist` : `${user} (uid ${account.uid}; groups ${account.groups.join(' ')})${account.groups.includes(DOCKER_GROUP) ? '' : ` warning: not in the ${DOCKER_GROUP} group`}`}`,
  );
  out(
    `home:    ${home}${homeState === undefined ? ' is missing' : ` (${octal(homeState.mode)}, ${owner(homeState)})`}`,
  );
  out('logs:    journalctl -u cuttle-agent -f');
  if (unit === undefined) return 4;
  return service.active ? 0 : 3;
}

async function perform(ctx: Context, actions: readonly Action[], dryRun: boolean): Promise<void> {
  if (dryRun) {
    ctx.out(`dry run: ${actions.length} action${actions.length === 1 ? '' : 's'}, none done`);
    for (const action of actions) {
      ctx.out(`would ${describeAction(action)}`);
      if (action.kind === 'write-file') {
        for (const line of action.shown.trimEnd().split('\n')) ctx.out(line && `    ${line}`);
      }
    }
    return;
  }
  await applyActions(ctx.host, actions, (action) => ctx.out(describeAction(action)));
}

/** Not root, no systemd, no docker group: an error for a real run, a note for a dry run. */
async function checkCanChange(
  ctx: Context,
  dryRun: boolean,
  needs: { dockerGroup: boolean },
): Promise<void> {
  const problems: ServiceError[] = [];
  if (!ctx.host.isRoot) {
    problems.push(
      new ServiceError(
        'not-root',
        'this changes the system (a user, /etc, systemd): run it as root, e.g. with sudo; --dry-run shows what it would do',
      ),
    );
  }
  if (!existsSync(hostPath(ctx.host, '/run/systemd/system'))) {
    problems.push(
      new ServiceError(
        'no-systemd',
        'systemd is not running on this machine (no /run/systemd/system); in a container, run `cuttle agent` as its command instead (docs/operations.md)',
      ),
    );
  }
  if (needs.dockerGroup && !(await groupExists(ctx.host, DOCKER_GROUP))) {
    problems.push(
      new ServiceError(
        'no-docker-group',
        `there is no ${DOCKER_GROUP} group, which grants the Docker socket: install Docker (its package makes the group) first`,
      ),
    );
  }
  const [first] = problems;
  if (first === undefined) return;
  if (!dryRun) throw first;
  for (const problem of problems) ctx.out(`note: a real run would fail: ${problem.message}`);
}

function parseInstallArgs(args: string[]): {
  user: string;
  dryRun: boolean;
  agentArgs: string[];
} {
  const options = { ...AGENT_FLAGS, ...SERVICE_FLAGS };
  const { values, tokens } = withFlagErrors(options, () =>
    parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true }),
  );
  // The agent's flags, as given, go to configFromArgs: one parser, one validation.
  const agentArgs: string[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name in SERVICE_FLAGS) continue;
    agentArgs.push(`--${token.name}`);
    if (token.value !== undefined) agentArgs.push(token.value);
  }
  return {
    user: checkUserName(values.user ?? DEFAULT_SERVICE_USER),
    dryRun: values['dry-run'] === true,
    agentArgs,
  };
}

function checkUserName(name: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name) || name === 'root') {
    throw new ServiceError(
      'usage',
      `--user: "${name}" is not a user name for a service (lower-case letters, digits, _ and -; not root)`,
    );
  }
  return name;
}

/** The paths the unit names must be visible to the service and safe to write into the unit. */
function checkServicePaths(config: AgentConfig, command: readonly string[]): void {
  const home = config.home;
  if (!/^\/[A-Za-z0-9._@+/-]*$/.test(home) || normalize(home) !== home || home.endsWith('/')) {
    throw new ServiceError(
      'unusable-path',
      `home: "${home}" must be an absolute, normalised path of letters, digits and . _ @ + - / for a service`,
    );
  }
  if (!isServiceHome(home)) {
    throw new ServiceError(
      'unusable-path',
      `home: ${home} cannot be the service's home: give a folder of its own, such as /var/lib/cuttle (not a system folder, nor under ${HIDDEN_FROM_SERVICE.join(', ')}, which the unit hides)`,
    );
  }
  if (config.ca !== undefined && (!isAbsolute(config.ca) || isHidden(config.ca))) {
    throw new ServiceError(
      'unusable-path',
      `ca: give an absolute path the service can read, outside ${HIDDEN_FROM_SERVICE.join(', ')} (it is ${config.ca})`,
    );
  }
  for (const part of command.filter((p) => p.startsWith('/'))) {
    if (isHidden(part) || /\s|%/.test(part)) {
      throw new ServiceError(
        'unusable-path',
        `${part} is hidden from the service (ProtectHome=, PrivateTmp=) or unusable in a unit: install Node.js and cuttle system-wide (e.g. npm install -g) and run this again`,
      );
    }
  }
}

function isHidden(path: string): boolean {
  return HIDDEN_FROM_SERVICE.some((dir) => path === dir || path.startsWith(`${dir}/`));
}

function isServiceHome(home: string): boolean {
  return (
    isAbsolute(home) &&
    home.split('/').filter(Boolean).length >= 2 &&
    !SYSTEM_FOLDERS.has(home) &&
    !isHidden(home)
  );
}

/** The settings that differ from the defaults (so later defaults apply), server and token first. */
export function configFileText(config: AgentConfig): string {
  const defaults = new Map<string, unknown>(
    Object.entries(v.parse(configSchema, { server: config.server })),
  );
  const { server, token, ...rest } = config;
  const kept: Record<string, unknown> = { server, token };
  for (const [key, value] of Object.entries(rest)) {
    if (!isDeepStrictEqual(value, defaults.get(key))) kept[key] = value;
  }
  return `${JSON.stringify(kept, null, 2)}\n`;
}

/** The "home" of an existing settings file, if it can be read. */
function homeOf(config: PathState | undefined): string | undefined {
  if (config?.content === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(config.content);
    if (typeof parsed === 'object' && parsed !== null && 'home' in parsed) {
      return typeof parsed.home === 'string' ? parsed.home : undefined;
    }
  } catch {
    return undefined;
  }
  return DEFAULT_UNIT_OPTIONS.home;
}

/** node and this installation's cli.js; `env cuttle` when running from source (tsx). */
function defaultCommand(): string[] {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  return existsSync(cli) ? [process.execPath, cli] : [...DEFAULT_UNIT_OPTIONS.command];
}
