import { posix } from 'node:path';
import type { TranslatedOptions } from './container-settings.js';
import { isInside, resolveHostPath } from './host-paths.js';
import { OptionsForbiddenError } from './options-errors.js';
import { isLocalVolumeDriver, volumeHostMount } from './families/mounts.js';
import { normalizeCapabilities } from './families/security.js';
import { parseBoolean } from './units.js';
import { splitKeyValue } from './value-syntax.js';

/** What a worker's owner lets steps ask for through container options. */
export interface OptionsPolicy {
  /** `--privileged`. */
  allowPrivileged: boolean;
  /** `--network/--pid/--ipc/--uts/--userns/--cgroupns host`, and joining another container's namespaces (`container:NAME`). */
  allowHostNamespaces: boolean;
  /** Capabilities beyond SAFE_CAPABILITIES that `--cap-add` may add (`ALL` allows any). */
  allowedCapabilities: string[];
  /**
   * `--device`, `--gpus`, `--device-cgroup-rule`; local volumes that mount a file system
   * (`volume-opt` type/device/o, but binds and tmpfs); volume plugins (`--volume-driver`,
   * `volume-driver=` other than `local`).
   */
  allowDevices: boolean;
  /**
   * `--security-opt seccomp=unconfined|<profile>`, `apparmor=<profile>` (but docker-default),
   * `label=…` (any SELinux label), `writable-cgroups=true`, `systempaths=unconfined`.
   */
  allowUnconfined: boolean;
  /** Host path prefixes that bind mounts may use. Sensitive paths must be listed exactly. */
  allowedBindMounts: string[];
  /** `--volumes-from`: another container's mounts may include anything. */
  allowVolumesFrom: boolean;
  /**
   * Host paths the agent itself guards, checked like SENSITIVE_HOST_PATHS but more strictly: a bind
   * inside one needs an allowedBindMounts entry naming it or a folder inside it (a broad prefix
   * does not do), and a bind holding one is refused. Not configuration: the agent passes its home
   * (other steps' folders and variables files, the journal) and the Docker socket it dials.
   */
  protectedHostPaths?: string[];
}

/** The settings a worker's owner configures. */
type PolicySetting = Exclude<keyof OptionsPolicy, 'protectedHostPaths'>;

export const DEFAULT_OPTIONS_POLICY: OptionsPolicy = Object.freeze({
  allowPrivileged: false,
  allowHostNamespaces: false,
  allowedCapabilities: [],
  allowDevices: false,
  allowUnconfined: false,
  allowedBindMounts: [],
  allowVolumesFrom: false,
});

/**
 * The configuration key and `cuttle agent` flag for each setting, named in refusals. The agent's
 * configuration must use these names.
 */
export const POLICY_SETTINGS = {
  allowPrivileged: { key: 'allowPrivileged', flag: '--allow-privileged' },
  allowHostNamespaces: { key: 'allowHostNamespaces', flag: '--allow-host-namespaces' },
  allowedCapabilities: { key: 'allowedCapabilities', flag: '--allow-capability CAP' },
  allowDevices: { key: 'allowDevices', flag: '--allow-devices' },
  allowUnconfined: { key: 'allowUnconfined', flag: '--allow-unconfined' },
  allowedBindMounts: { key: 'allowedBindMounts', flag: '--allow-bind-mount PATH' },
  allowVolumesFrom: { key: 'allowVolumesFrom', flag: '--allow-volumes-from' },
} as const satisfies Record<PolicySetting, { key: string; flag: string }>;

/**
 * Capabilities `--cap-add` may add without any setting: Docker's default set (re-adding one is a
 * no-op) and a few that give no power over the host or other containers.
 */
export const SAFE_CAPABILITIES: readonly string[] = [
  'CAP_AUDIT_WRITE',
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_MKNOD',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
  'CAP_SYS_NICE',
  'CAP_IPC_LOCK',
  'CAP_LEASE',
  'CAP_WAKE_ALARM',
  'CAP_AUDIT_READ',
];

/**
 * Host paths a bind mount may use only when allowedBindMounts names them (or a sensitive folder
 * holding them) — a broad prefix such as `/` does not allow them: the root, system folders and the
 * Docker socket. Anything inside one of them (but `/`), and any folder holding one (e.g. `/var`), is
 * just as sensitive.
 */
export const SENSITIVE_HOST_PATHS: readonly string[] = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib',
  '/lib32',
  '/lib64',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/sys',
  '/usr',
  '/var/lib/docker',
  '/var/lib/containerd',
  '/var/run',
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/containerd',
];

function forbidden(option: string, setting: PolicySetting, what: string): never {
  const { key, flag } = POLICY_SETTINGS[setting];
  throw new OptionsForbiddenError(
    `Option ${option} is forbidden by this worker's policy: ${what}. The worker's owner can allow it with ${key} in the agent's configuration file, or ${flag} on \`cuttle agent\`.`,
    option,
    key,
  );
}

/** The root, a system folder or the Docker socket; anything inside one (but `/`); or a folder holding one. */
function isSensitive(path: string): boolean {
  return SENSITIVE_HOST_PATHS.some(
    (sensitive) => isInside(sensitive, path) || (sensitive !== '/' && isInside(path, sensitive)),
  );
}

/**
 * Whether an allowed prefix covers the path. A sensitive path needs an allowed entry that is itself
 * sensitive (the owner named it on purpose), not a broad prefix such as `/`.
 */
function isAllowed(path: string, allowed: string[]): boolean {
  if (!isSensitive(path)) return allowed.some((prefix) => isInside(path, prefix));
  return allowed.some(
    (prefix) =>
      prefix === path || (prefix !== '/' && isSensitive(prefix) && isInside(path, prefix)),
  );
}

/**
 * Why a `--security-opt` can loosen the step container's confinement, or undefined for the few
 * that keep or tighten the default. Anything not known to be safe needs allowUnconfined, so an
 * option a newer engine learns is refused rather than let through.
 */
function unconfinement(opt: string): string | undefined {
  // The engine's split: at the first `=`, else at the first `:` (the old separator).
  const [key, value = ''] = opt.includes('=') ? splitKeyValue(opt) : splitKeyValue(opt, ':');
  switch (key) {
    case 'no-new-privileges':
      return undefined;
    case 'seccomp':
      if (value === 'builtin') return undefined;
      return value === 'unconfined'
        ? "it disables the step container's confinement"
        : 'a custom seccomp profile can lift all system call confinement';
    case 'apparmor':
      if (value === 'docker-default') return undefined;
      return value === 'unconfined'
        ? "it disables the step container's confinement"
        : 'an AppArmor profile other than docker-default can lift the confinement of the step container';
    case 'label':
      // type, user and role can pick an unconfined SELinux domain (spc_t, unconfined_u); level
      // picks the MCS categories that keep containers apart, e.g. another container's.
      return value === 'disable'
        ? "it disables the step container's confinement"
        : "an SELinux label can lift the step container's confinement or its separation from other containers";
    case 'writable-cgroups':
      if (isFalse(value)) return undefined;
      return 'it lets the step change its own cgroup limits';
    default:
      return "cuttle cannot tell what it does to the step container's confinement";
  }
}

function isFalse(value: string): boolean {
  try {
    return !parseBoolean(value);
  } catch {
    return false;
  }
}

/**
 * Throws OptionsForbiddenError (`options-forbidden`) for the first thing the translated options ask
 * for that the policy does not allow, naming the option and the setting that would allow it.
 */
export function checkOptionsPolicy(translated: TranslatedOptions, policy: OptionsPolicy): void {
  const host = translated.hostConfig;
  if (host.Privileged === true && !policy.allowPrivileged) {
    forbidden('--privileged', 'allowPrivileged', 'it gives the step full control of the worker');
  }

  const namespaces = [
    ['--network', host.NetworkMode],
    ['--pid', host.PidMode],
    ['--ipc', host.IpcMode],
    ['--uts', host.UTSMode],
    ['--userns', host.UsernsMode],
    ['--cgroupns', host.CgroupnsMode],
  ] as const;
  if (!policy.allowHostNamespaces) {
    for (const [flag, mode] of namespaces) {
      if (mode === 'host') {
        forbidden(`${flag} host`, 'allowHostNamespaces', "it shares the worker's own namespace");
      }
      if (mode?.startsWith('container:') === true) {
        forbidden(
          `${flag} ${mode}`,
          'allowHostNamespaces',
          "it joins another container's namespace, which may not be a step's",
        );
      }
    }
  }

  const allowedCaps = new Set(normalizeCapabilities(policy.allowedCapabilities));
  if (!allowedCaps.has('ALL')) {
    for (const cap of host.CapAdd ?? []) {
      if (!SAFE_CAPABILITIES.includes(cap) && !allowedCaps.has(cap)) {
        forbidden(
          `--cap-add ${cap}`,
          'allowedCapabilities',
          `${cap} gives power over the worker or other containers`,
        );
      }
    }
  }

  if (!policy.allowDevices) {
    const device = host.Devices?.[0];
    if (device !== undefined) {
      forbidden(`--device ${device.PathOnHost}`, 'allowDevices', 'it exposes a host device');
    }
    if ((host.DeviceRequests ?? []).length > 0) {
      forbidden('--gpus/--device', 'allowDevices', 'it exposes host devices');
    }
    const rule = host.DeviceCgroupRules?.[0];
    if (rule !== undefined) {
      forbidden(
        `--device-cgroup-rule '${rule}'`,
        'allowDevices',
        'it grants access to host devices',
      );
    }
    const plugin =
      'a volume plugin may mount any host path, device or network share (from the volume name or its options), which cuttle cannot check';
    // It also drives the anonymous volumes of the image's VOLUME lines.
    if (host.VolumeDriver !== undefined && !isLocalVolumeDriver(host.VolumeDriver)) {
      forbidden(`--volume-driver ${host.VolumeDriver}`, 'allowDevices', plugin);
    }
    for (const mount of host.Mounts ?? []) {
      const use = volumeHostMount(mount);
      if (use?.kind === 'plugin') {
        forbidden(`--mount volume-driver=${use.driver}`, 'allowDevices', plugin);
      }
      if (use?.kind === 'filesystem') {
        // Not `o`: it may hold a network share's password.
        forbidden(
          `--mount type=volume,target=${mount.Target}`,
          'allowDevices',
          `its volume-opt type=${use.type} device=${use.device} makes the Docker engine mount that file system on the worker, as root`,
        );
      }
    }
  }

  if (!policy.allowUnconfined) {
    for (const opt of host.SecurityOpt ?? []) {
      const why = unconfinement(opt);
      if (why === undefined) continue;
      // A profile is shown by name only: translation put its whole JSON in the option.
      const custom = /^seccomp[=:]/.test(opt) && !/^seccomp[=:]unconfined$/.test(opt);
      forbidden(`--security-opt ${custom ? 'seccomp=<profile>' : opt}`, 'allowUnconfined', why);
    }
    if (host.MaskedPaths?.length === 0 || host.ReadonlyPaths?.length === 0) {
      forbidden(
        '--security-opt systempaths=unconfined',
        'allowUnconfined',
        "it unmasks the kernel's /proc and /sys files",
      );
    }
  }

  if ((host.VolumesFrom ?? []).length > 0 && !policy.allowVolumesFrom) {
    forbidden(
      `--volumes-from ${host.VolumesFrom?.[0] ?? ''}`,
      'allowVolumesFrom',
      "another container's mounts may include any host folder",
    );
  }

  const resolve = (path: string): string => resolveHostPath(path) ?? posix.resolve(path);
  const allowed = policy.allowedBindMounts.map(resolve);
  const guarded = (policy.protectedHostPaths ?? []).map(resolve);
  for (const bind of translated.bindMounts) {
    const path = resolveHostPath(bind.hostPath);
    if (path === undefined) {
      forbidden(
        bind.option,
        'allowedBindMounts',
        `${bind.hostPath} cannot be resolved (a dangling or looping symbolic link, or a folder cuttle may not read), so cuttle cannot tell what the engine would mount`,
      );
    }
    if (!isAllowed(path, allowed)) {
      const why = isSensitive(path)
        ? `${path} is the root, a system folder or the Docker socket (or inside or holding one), which must be allowed by name`
        : allowed.length === 0
          ? 'this worker allows no bind mounts'
          : `${path} is not under an allowed host path (${allowed.join(', ')})`;
      forbidden(bind.option, 'allowedBindMounts', why);
    }
    for (const folder of guarded) {
      if (isInside(path, folder)) {
        // Only an entry naming the folder or something inside it counts, not a broad prefix.
        if (allowed.some((prefix) => isInside(path, prefix) && isInside(prefix, folder))) continue;
        forbidden(
          bind.option,
          'allowedBindMounts',
          `${path} is inside ${folder}, which the agent protects (its home, or the Docker socket); only an allowed path naming ${folder} or a folder inside it allows it`,
        );
      }
      if (isInside(folder, path)) {
        forbidden(
          bind.option,
          'allowedBindMounts',
          `${path} holds ${folder}, which the agent protects (its home, or the Docker socket); mount a folder beside it instead`,
        );
      }
    }
  }
}
