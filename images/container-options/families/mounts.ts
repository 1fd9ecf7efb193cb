// Volumes and mounts: -v, --mount, --tmpfs, --read-only, --volumes-from, --volume-driver,
// --storage-opt. Every host path mounted is recorded in bindMounts for the worker's policy.
import { posix } from 'node:path';
import type {
  BindMount,
  EmptyObject,
  MountSpec,
  OptionsContext,
  TranslatedOptions,
} from '../container-settings.js';
import { invalid, parsed, type Flags } from '../given-flags.js';
import { resolveHostPath } from '../host-paths.js';
import type { FlagOccurrence } from '../parse-flags.js';
import { fromStepFolder } from '../step-files.js';
import { parseBoolean, parseBytes } from '../units.js';
import { readCsvRecord, splitKeyValue } from '../value-syntax.js';

const PROPAGATIONS = new Set(['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave']);

function bindMount(
  occurrence: FlagOccurrence,
  hostPath: string,
  containerPath: string,
  readOnly: boolean,
): BindMount {
  return { hostPath, containerPath, readOnly, option: occurrence.written };
}

/**
 * The host path the engine is sent: resolved as the policy will check it (host-paths.ts). A path
 * that cannot be resolved is sent as written, and the policy refuses it.
 */
function hostPathToMount(path: string): string {
  return resolveHostPath(path) ?? posix.resolve(path);
}

/** The docker CLI's -v parser (compose's ParseVolume): source, target and options. */
function parseVolumeSpec(spec: string): {
  source: string;
  target: string;
  readOnly: boolean;
  bind: boolean;
} {
  if (spec === '') throw new Error('invalid empty volume spec');
  const volume = { source: '', target: '', readOnly: false, bind: false };
  if (spec.length <= 2) {
    volume.target = spec;
    return volume;
  }
  const isDrive = (buffer: string, c: string): boolean =>
    c === ':' && buffer.length === 1 && /\p{L}/u.test(buffer);
  let buffer = '';
  const chars = [...spec, ''];
  for (const c of chars) {
    if (isDrive(buffer, c)) {
      buffer += c;
    } else if (c === ':' || c === '') {
      if (buffer === '') throw new Error(`invalid spec: ${spec}: empty section between colons`);
      if (volume.source === '' && c === '') volume.target = buffer;
      else if (volume.source === '') volume.source = buffer;
      else if (volume.target === '') volume.target = buffer;
      else if (c === ':') throw new Error(`invalid spec: ${spec}: too many colons`);
      else {
        for (const option of buffer.split(',')) {
          if (option === 'ro') volume.readOnly = true;
          else if (option === 'rw') volume.readOnly = false;
        }
      }
      buffer = '';
    } else {
      buffer += c;
    }
  }
  const first = volume.source.charAt(0);
  volume.bind =
    volume.source !== '' &&
    ('./~'.includes(first) ||
      (volume.source.length > 1 &&
        (volume.source.startsWith('\\\\') || isDrive(first, volume.source.charAt(1)))));
  return volume;
}

/** The container path of a `-v` / HostConfig.Binds entry, or undefined when it cannot be parsed. */
export function volumeTarget(spec: string): string | undefined {
  try {
    return parseVolumeSpec(spec).target;
  } catch {
    return undefined;
  }
}

/** -v, --tmpfs, --read-only, --volumes-from, --volume-driver and --storage-opt. */
export function translateVolumes(
  flags: Flags,
  { config, hostConfig, bindMounts }: TranslatedOptions,
  ctx: OptionsContext,
): void {
  const binds: string[] = [];
  const volumes: Record<string, EmptyObject> = {};
  let anonymous = false;
  const seen = new Set<string>();
  for (const occurrence of flags.all('volume')) {
    const spec = occurrence.value;
    if (seen.has(spec)) continue;
    seen.add(spec);
    const volume = parsed(occurrence, parseVolumeSpec);
    if (volume.source === '') {
      volumes[spec] = {};
      anonymous = true;
      continue;
    }
    let bind = spec;
    if (volume.bind) {
      const colon = spec.indexOf(':');
      const hostPart = fromStepFolder(spec.slice(0, colon), ctx);
      if (!posix.isAbsolute(hostPart)) {
        throw invalid(
          occurrence,
          `the host path ${hostPart} must be absolute (or start with ./, relative to the step's folder)`,
        );
      }
      const hostPath = hostPathToMount(hostPart);
      if (hostPath.includes(':')) {
        throw invalid(
          occurrence,
          `the host path ${hostPart} resolves to ${hostPath}, whose ':' the engine would take for a separator; use --mount type=bind,source=…`,
        );
      }
      bind = `${hostPath}${spec.slice(colon)}`;
      bindMounts.push(bindMount(occurrence, hostPath, volume.target, volume.readOnly));
    }
    binds.push(bind);
  }
  if (binds.length > 0) hostConfig.Binds = binds;
  if (anonymous) config.Volumes = volumes;
  const tmpfs = flags.values('tmpfs');
  if (tmpfs.length > 0) {
    hostConfig.Tmpfs = {};
    for (const value of tmpfs) {
      const [target, options] = splitKeyValue(value, ':');
      hostConfig.Tmpfs[target] = options ?? '';
    }
  }
  const readOnly = flags.boolean('read-only');
  if (readOnly === true) hostConfig.ReadonlyRootfs = true;
  const volumesFrom = flags.values('volumes-from');
  if (volumesFrom.length > 0) hostConfig.VolumesFrom = volumesFrom;
  const volumeDriver = flags.nonEmpty('volume-driver');
  if (volumeDriver !== undefined) hostConfig.VolumeDriver = volumeDriver;
  const storage = flags.all('storage-opt');
  if (storage.length > 0) {
    hostConfig.StorageOpt = {};
    for (const occurrence of storage) {
      const [key, value] = splitKeyValue(occurrence.value);
      if (value === undefined)
        throw invalid(occurrence, 'invalid storage option (write key=value)');
      hostConfig.StorageOpt[key] = value;
    }
  }
}

/** The docker CLI's --mount parser: CSV `key=value` fields, checked as the CLI checks them. */
function parseMount(value: string, ctx: OptionsContext): MountSpec {
  const mount: MountSpec = { Type: 'volume', Target: '' };
  const volumeOptions = (): NonNullable<MountSpec['VolumeOptions']> => {
    mount.VolumeOptions ??= { Labels: {} };
    mount.VolumeOptions.DriverConfig ??= {};
    return mount.VolumeOptions;
  };
  const bindOptions = (): NonNullable<MountSpec['BindOptions']> => (mount.BindOptions ??= {});
  const tmpfsOptions = (): NonNullable<MountSpec['TmpfsOptions']> => (mount.TmpfsOptions ??= {});
  const valueOf = <T>(key: string, val: string, parse: (text: string) => T): T => {
    try {
      return parse(val);
    } catch {
      throw new Error(`invalid value for ${key}: ${val}`);
    }
  };
  const setOnMap = (target: Record<string, string>, val: string): void => {
    const [key, entry] = splitKeyValue(val);
    if (key !== '') target[key] = entry ?? '';
  };
  for (const field of readCsvRecord(value)) {
    const [name, val] = splitKeyValue(field);
    const key = name.toLowerCase();
    if (val === undefined) {
      if (key === 'readonly' || key === 'ro') mount.ReadOnly = true;
      else if (key === 'volume-nocopy') volumeOptions().NoCopy = true;
      else if (key === 'bind-nonrecursive') bindOptions().NonRecursive = true;
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case 'type':
        mount.Type = val.toLowerCase();
        break;
      case 'source':
      case 'src':
        mount.Source = fromStepFolder(val, ctx);
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.Target = val;
        break;
      case 'readonly':
      case 'ro':
        mount.ReadOnly = valueOf(key, val, parseBoolean);
        break;
      case 'consistency':
        mount.Consistency = val.toLowerCase();
        break;
      case 'bind-propagation':
        bindOptions().Propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bindOptions().NonRecursive = valueOf(key, val, parseBoolean);
        break;
      case 'bind-recursive':
        if (val === 'enabled') bindOptions();
        else if (val === 'disabled') bindOptions().NonRecursive = true;
        else if (val === 'writable') bindOptions().ReadOnlyNonRecursive = true;
        else if (val === 'readonly') bindOptions().ReadOnlyForceRecursive = true;
        else {
          throw new Error(
            `invalid value for ${key}: ${val} (must be "enabled", "disabled", "writable", or "readonly")`,
          );
        }
        break;
      case 'volume-subpath':
        volumeOptions().Subpath = val;
        break;
      case 'volume-nocopy':
        volumeOptions().NoCopy = valueOf(key, val, parseBoolean);
        break;
      case 'volume-label':
        setOnMap((volumeOptions().Labels ??= {}), val);
        break;
      case 'volume-driver':
        (volumeOptions().DriverConfig ??= {}).Name = val;
        break;
      case 'volume-opt': {
        const driver = (volumeOptions().DriverConfig ??= {});
        setOnMap((driver.Options ??= {}), val);
        break;
      }
      case 'tmpfs-size':
        tmpfsOptions().SizeBytes = valueOf(key, val, parseBytes);
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val) || parseInt(val, 8) > 0xffffffff) {
          throw new Error(`invalid value for ${key}: ${val}`);
        }
        tmpfsOptions().Mode = parseInt(val, 8);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (mount.Type === '') throw new Error('type is required');
  if (mount.Target === '') throw new Error('target is required');
  for (const [options, type] of [
    [mount.VolumeOptions, 'volume'],
    [mount.BindOptions, 'bind'],
    [mount.TmpfsOptions, 'tmpfs'],
  ] as const) {
    if (options !== undefined && mount.Type !== type) {
      throw new Error(`cannot mix '${type}-*' options with mount type '${mount.Type}'`);
    }
  }
  const bind = mount.BindOptions;
  if (bind?.ReadOnlyNonRecursive === true && mount.ReadOnly !== true) {
    throw new Error(
      "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
    );
  }
  if (bind?.ReadOnlyForceRecursive === true) {
    if (mount.ReadOnly !== true) {
      throw new Error(
        "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction",
      );
    }
    if (bind.Propagation !== 'rprivate') {
      throw new Error(
        "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
      );
    }
  }
  if (bind?.Propagation !== undefined && !PROPAGATIONS.has(bind.Propagation)) {
    throw new Error(`invalid bind-propagation ${bind.Propagation}`);
  }
  return mount;
}

/**
 * What a `--mount type=volume` makes the engine mount from the host rather than a folder of its
 * own: the local driver's `type`, `device` and `o` options are mount(2)'s arguments, run by dockerd
 * as root. `bind`: a bind of the host path `device` (o has the exact flag `bind` or `rbind`, as
 * moby's mount option table reads it). `filesystem`: any other mount of a device, image or network
 * share. `plugin`: a volume driver other than `local`, which may mount anything from the volume's
 * name or options. A tmpfs volume mounts nothing of the host.
 */
export type VolumeHostMount =
  | { kind: 'bind'; device: string }
  | { kind: 'filesystem'; type: string; device: string }
  | { kind: 'plugin'; driver: string };

export function volumeHostMount(mount: MountSpec): VolumeHostMount | undefined {
  if (mount.Type !== 'volume') return undefined;
  const driver = mount.VolumeOptions?.DriverConfig?.Name ?? '';
  if (!isLocalVolumeDriver(driver)) return { kind: 'plugin', driver };
  const { type, device, o } = mount.VolumeOptions?.DriverConfig?.Options ?? {};
  if (type === undefined && device === undefined && o === undefined) return undefined;
  const flags = (o ?? '').split(',');
  if (device !== undefined && (flags.includes('bind') || flags.includes('rbind'))) {
    return { kind: 'bind', device };
  }
  if (type === 'tmpfs') return undefined;
  return { kind: 'filesystem', type: type ?? '', device: device ?? '' };
}

/** The engine's own driver; unset means the daemon's default, `local`. */
export function isLocalVolumeDriver(driver: string): boolean {
  return driver === '' || driver === 'local';
}

export function translateMounts(
  flags: Flags,
  { hostConfig, bindMounts }: TranslatedOptions,
  ctx: OptionsContext,
): void {
  const mounts: MountSpec[] = [];
  for (const occurrence of flags.all('mount')) {
    const mount = parsed(occurrence, (value) => parseMount(value, ctx));
    mounts.push(mount);
    const readOnly = mount.ReadOnly === true;
    if (mount.Type === 'bind') {
      const source = mount.Source ?? '';
      if (!posix.isAbsolute(source)) {
        throw invalid(
          occurrence,
          `a bind mount needs an absolute source path (or one starting with ./, relative to the step's folder)`,
        );
      }
      mount.Source = hostPathToMount(source);
      bindMounts.push(bindMount(occurrence, mount.Source, mount.Target, readOnly));
    }
    const driverOptions = mount.VolumeOptions?.DriverConfig?.Options;
    const host = volumeHostMount(mount);
    if (host?.kind === 'bind' && driverOptions !== undefined) {
      // dockerd would take a relative device from its own working directory.
      if (!posix.isAbsolute(host.device)) {
        throw invalid(
          occurrence,
          `a local volume that binds a host folder (o=bind or rbind) needs an absolute host path as its device, not ${host.device}`,
        );
      }
      driverOptions.device = hostPathToMount(host.device);
      bindMounts.push(bindMount(occurrence, driverOptions.device, mount.Target, readOnly));
    }
  }
  if (mounts.length > 0) hostConfig.Mounts = mounts;
}
