import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, posix, relative, resolve } from 'node:path';
import type {
  ContainerCreateConfig,
  DeviceMapping,
  DeviceRequest,
  EndpointSettings,
  HealthConfig,
  HostConfigSettings,
  MountSpec,
  OptionsContext,
  PortBinding,
  ThrottleDevice,
  TranslatedOptions,
  Ulimit,
  WeightDevice,
  BindMount,
  EmptyObject,
} from './container-settings.js';
import { canonicalName } from './option-table.js';
import { OptionsInvalidError } from './options-errors.js';
import { parseFlags, type FlagOccurrence } from './parse-flags.js';
import { splitWords } from './split-words.js';
import {
  parseBoolean,
  parseBytes,
  parseDuration,
  parseInteger,
  parseNanoCpus,
  parseSwapBytes,
} from './units.js';
import {
  canonicalIp,
  isValidMac,
  parsePortRange,
  parsePortSpec,
  readCsvRecord,
  splitProtoPort,
  validateDnsSearch,
} from './value-syntax.js';

/** Labels under this prefix are cuttle's own; options cannot set them. */
export const RESERVED_LABEL_PREFIX = 'dev.cuttle.';

const ULIMIT_NAMES = new Set([
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
]);
const SYSCTL_NAMES = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);
const PROPAGATIONS = new Set(['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave']);
const DEVICE_CGROUP_RULE = /^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$/;
// A CDI device name: vendor.com/class=name.
const CDI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*\/[a-zA-Z0-9][a-zA-Z0-9_.-]*=[a-zA-Z0-9_.:-]+$/;

/** The flags given, grouped by canonical name, in order. */
class Flags {
  readonly #byName = new Map<string, FlagOccurrence[]>();

  constructor(occurrences: FlagOccurrence[]) {
    for (const occurrence of occurrences) {
      const name = canonicalName(occurrence.definition);
      const list = this.#byName.get(name) ?? [];
      list.push(occurrence);
      this.#byName.set(name, list);
    }
  }

  all(name: string): FlagOccurrence[] {
    return this.#byName.get(name) ?? [];
  }

  /** The last occurrence (pflag keeps the last value of a non-list flag). */
  last(name: string): FlagOccurrence | undefined {
    return this.all(name).at(-1);
  }

  /** The last value, or undefined when not given. */
  string(name: string): string | undefined {
    return this.last(name)?.value;
  }

  boolean(name: string): boolean | undefined {
    const occurrence = this.last(name);
    return occurrence === undefined ? undefined : parsed(occurrence, parseBoolean);
  }

  number(name: string, parse: (value: string) => number): number | undefined {
    const occurrence = this.last(name);
    return occurrence === undefined ? undefined : parsed(occurrence, parse);
  }
}

function invalid(occurrence: FlagOccurrence, detail: string): OptionsInvalidError {
  return new OptionsInvalidError(
    `Option ${occurrence.written} in Octopus.Action.Container.Options: ${detail}.`,
    occurrence.written,
  );
}

function parsed<T>(occurrence: FlagOccurrence, parse: (value: string) => T): T {
  try {
    return parse(occurrence.value);
  } catch (error) {
    throw invalid(occurrence, error instanceof Error ? error.message : String(error));
  }
}

const int64 = (value: string): number => parseInteger(value, { bits: 64, signed: true });
const uint16 = (value: string): number => parseInteger(value, { bits: 16, signed: false });

/**
 * Translates `Octopus.Action.Container.Options` into the Engine API settings that `docker create`
 * (docker CLI 28, as it talks to API 1.41+) would send for the same flags. Throws
 * OptionsInvalidError (`options-invalid`) for malformed, unknown or refused options. Reads
 * `--env-file`, `--label-file` and seccomp profiles, which must be inside `ctx.workFolder`.
 */
export function translateContainerOptions(options: string, ctx: OptionsContext): TranslatedOptions {
  const occurrences = parseFlags(splitWords(options));
  for (const occurrence of occurrences) {
    const { refusal, takesValue } = occurrence.definition;
    if (refusal === undefined) continue;
    // `--rm=false`, `-t=false`: asking for the default is harmless.
    if (!takesValue && parsed(occurrence, parseBoolean) === false) continue;
    throw new OptionsInvalidError(
      `Option ${occurrence.written} cannot be used in Octopus.Action.Container.Options: ${refusal}.`,
      occurrence.written,
    );
  }
  const flags = new Flags(occurrences);
  const config: Partial<ContainerCreateConfig> = {};
  const hostConfig: Partial<HostConfigSettings> = {};
  const warnings: string[] = [];
  const bindMounts: BindMount[] = [];
  const result: TranslatedOptions = { config, hostConfig, warnings, bindMounts };

  translateIdentity(flags, config, warnings);
  translateEnvironment(flags, ctx, config, warnings);
  translateLabels(flags, ctx, config, warnings);
  translateVolumes(flags, ctx, config, hostConfig, bindMounts);
  translateMounts(flags, ctx, hostConfig, bindMounts);
  translatePorts(flags, config, hostConfig);
  translateResources(flags, hostConfig);
  translateSecurity(flags, ctx, hostConfig);
  translateDevices(flags, hostConfig);
  translateHealthcheck(flags, config, warnings);
  translateRest(flags, hostConfig, warnings);
  const networkingConfig = translateNetworking(flags, config, hostConfig);
  if (networkingConfig !== undefined) result.networkingConfig = networkingConfig;
  const platform = flags.string('platform');
  if (platform !== undefined && platform !== '') result.platform = platform;
  return result;
}

function translateIdentity(
  flags: Flags,
  config: Partial<ContainerCreateConfig>,
  warnings: string[],
): void {
  const user = flags.string('user');
  if (user !== undefined && user !== '') config.User = user;
  const workdir = flags.last('workdir');
  if (workdir !== undefined && workdir.value !== '') {
    if (!posix.isAbsolute(workdir.value)) {
      throw invalid(workdir, 'the working directory must be an absolute path in the container');
    }
    config.WorkingDir = workdir.value;
  }
  const hostname = flags.string('hostname');
  if (hostname !== undefined && hostname !== '') config.Hostname = hostname;
  const domainname = flags.string('domainname');
  if (domainname !== undefined && domainname !== '') config.Domainname = domainname;
  const stopSignal = flags.string('stop-signal');
  if (stopSignal !== undefined && stopSignal !== '') config.StopSignal = stopSignal;
  const stopTimeout = flags.number('stop-timeout', int64);
  if (stopTimeout !== undefined) config.StopTimeout = stopTimeout;
  const entrypoint = flags.last('entrypoint');
  if (entrypoint !== undefined) {
    config.Entrypoint = [entrypoint.value];
    warnings.push(
      `${entrypoint.written} is ignored: cuttle runs the step's script as the container's command, with no entrypoint.`,
    );
  }
}

function readStepFile(occurrence: FlagOccurrence, ctx: OptionsContext, what: string): string {
  const path = resolve(ctx.workFolder, occurrence.value);
  let real: string;
  let folder: string;
  try {
    folder = realpathSync(ctx.workFolder);
    real = realpathSync(path);
  } catch (error) {
    throw invalid(occurrence, `cannot read the ${what} ${path}: ${describe(error)}`);
  }
  const inside = relative(folder, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw invalid(
      occurrence,
      `the ${what} must be inside the step's folder ${ctx.workFolder} (cuttle reads no other files on the worker)`,
    );
  }
  try {
    return readFileSync(real, 'utf8');
  } catch (error) {
    throw invalid(occurrence, `cannot read the ${what} ${path}: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return error.code === 'ENOENT' ? 'it does not exist' : error.code;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The CLI's kvfile parser; bare keys (which the CLI looks up in its own environment) are dropped. */
function parseKeyValueFile(
  occurrence: FlagOccurrence,
  text: string,
  onBareKey: (key: string) => void,
): string[] {
  const lines: string[] = [];
  const all = text.split(/\r?\n/);
  if (all.at(-1) === '') all.pop();
  all.forEach((raw, index) => {
    const line = (index === 0 ? raw.replace(/^\uFEFF/, '') : raw).replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const equals = line.indexOf('=');
    const key = equals === -1 ? line : line.slice(0, equals);
    if (key === '') throw invalid(occurrence, `no variable name on line '${line}'`);
    if (/[ \t]/.test(key)) throw invalid(occurrence, `variable '${key}' contains whitespaces`);
    if (equals === -1) onBareKey(key);
    else lines.push(line);
  });
  return lines;
}

function translateEnvironment(
  flags: Flags,
  ctx: OptionsContext,
  config: Partial<ContainerCreateConfig>,
  warnings: string[],
): void {
  const entries: string[] = [];
  for (const occurrence of flags.all('env-file')) {
    const text = readStepFile(occurrence, ctx, 'env file');
    entries.push(
      ...parseKeyValueFile(occurrence, text, (key) =>
        warnings.push(
          `${occurrence.written}: ${key} has no value and is left out; cuttle never copies the worker's environment into a step (write ${key}=value).`,
        ),
      ),
    );
  }
  for (const occurrence of flags.all('env')) {
    const equals = occurrence.value.indexOf('=');
    if (equals === 0 || occurrence.value === '') {
      throw invalid(occurrence, `invalid environment variable: ${occurrence.value}`);
    }
    if (equals === -1) {
      throw invalid(
        occurrence,
        `it has no value: the docker CLI would copy ${occurrence.value} from the environment it runs in, and cuttle never passes the worker's environment to a step. Write ${occurrence.value}=value`,
      );
    }
    entries.push(occurrence.value);
  }
  if (entries.length === 0) return;
  // The last value of a variable wins, and each variable appears once.
  const byKey = new Map<string, string>();
  for (const entry of entries) {
    const key = entry.slice(0, entry.indexOf('='));
    byKey.delete(key);
    byKey.set(key, entry);
  }
  config.Env = [...byKey.values()];
}

function translateLabels(
  flags: Flags,
  ctx: OptionsContext,
  config: Partial<ContainerCreateConfig>,
  warnings: string[],
): void {
  const entries: { entry: string; occurrence: FlagOccurrence }[] = [];
  for (const occurrence of flags.all('label-file')) {
    const text = readStepFile(occurrence, ctx, 'label file');
    // The CLI keeps a bare key in a label file as a label with an empty value... only via -l; in
    // files it drops it (no lookup function), and so does cuttle.
    for (const entry of parseKeyValueFile(occurrence, text, () => undefined)) {
      entries.push({ entry, occurrence });
    }
  }
  for (const occurrence of flags.all('label')) {
    const key = occurrence.value.split('=')[0] ?? '';
    const trimmed = key.replace(/^[ \t]+/, '');
    if (trimmed === '')
      throw invalid(occurrence, `invalid label '${occurrence.value}': empty name`);
    if (/[ \t]/.test(trimmed)) throw invalid(occurrence, `label '${key}' contains whitespaces`);
    entries.push({ entry: occurrence.value, occurrence });
  }
  if (entries.length === 0) return;
  const labels: Record<string, string> = {};
  for (const { entry, occurrence } of entries) {
    const equals = entry.indexOf('=');
    const key = equals === -1 ? entry : entry.slice(0, equals);
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      warnings.push(
        `${occurrence.written}: labels starting with ${RESERVED_LABEL_PREFIX} are cuttle's own; ${key} is ignored.`,
      );
      continue;
    }
    labels[key] = equals === -1 ? '' : entry.slice(equals + 1);
  }
  config.Labels = labels;
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

function translateVolumes(
  flags: Flags,
  ctx: OptionsContext,
  config: Partial<ContainerCreateConfig>,
  hostConfig: Partial<HostConfigSettings>,
  bindMounts: BindMount[],
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
      let hostPart = spec.slice(0, colon);
      if (hostPart.startsWith('.')) hostPart = resolve(ctx.workFolder, hostPart);
      if (!posix.isAbsolute(hostPart)) {
        throw invalid(
          occurrence,
          `the host path ${hostPart} must be absolute (or start with ./, relative to the step's folder)`,
        );
      }
      bind = `${hostPart}${spec.slice(colon)}`;
      bindMounts.push({
        hostPath: hostPart,
        containerPath: volume.target,
        readOnly: volume.readOnly,
        option: occurrence.written,
      });
    }
    binds.push(bind);
  }
  if (binds.length > 0) hostConfig.Binds = binds;
  if (anonymous) config.Volumes = volumes;
  const tmpfs = flags.all('tmpfs');
  if (tmpfs.length > 0) {
    hostConfig.Tmpfs = {};
    for (const occurrence of tmpfs) {
      const colon = occurrence.value.indexOf(':');
      if (colon === -1) hostConfig.Tmpfs[occurrence.value] = '';
      else hostConfig.Tmpfs[occurrence.value.slice(0, colon)] = occurrence.value.slice(colon + 1);
    }
  }
  const readOnly = flags.boolean('read-only');
  if (readOnly === true) hostConfig.ReadonlyRootfs = true;
  const volumesFrom = flags.all('volumes-from').map((o) => o.value);
  if (volumesFrom.length > 0) hostConfig.VolumesFrom = volumesFrom;
  const volumeDriver = flags.string('volume-driver');
  if (volumeDriver !== undefined && volumeDriver !== '') hostConfig.VolumeDriver = volumeDriver;
  const storage = flags.all('storage-opt');
  if (storage.length > 0) {
    hostConfig.StorageOpt = {};
    for (const occurrence of storage) {
      const equals = occurrence.value.indexOf('=');
      if (equals === -1) throw invalid(occurrence, 'invalid storage option (write key=value)');
      hostConfig.StorageOpt[occurrence.value.slice(0, equals)] = occurrence.value.slice(equals + 1);
    }
  }
}

function parseMount(value: string, ctx: OptionsContext): MountSpec {
  const mount: MountSpec = { Type: 'volume', Target: '' };
  const volumeOptions = (): NonNullable<MountSpec['VolumeOptions']> => {
    mount.VolumeOptions ??= { Labels: {} };
    mount.VolumeOptions.DriverConfig ??= {};
    return mount.VolumeOptions;
  };
  const bindOptions = (): NonNullable<MountSpec['BindOptions']> => (mount.BindOptions ??= {});
  const tmpfsOptions = (): NonNullable<MountSpec['TmpfsOptions']> => (mount.TmpfsOptions ??= {});
  const bool = (key: string, val: string): boolean => {
    try {
      return parseBoolean(val);
    } catch {
      throw new Error(`invalid value for ${key}: ${val}`);
    }
  };
  const setOnMap = (target: Record<string, string>, val: string): void => {
    const equals = val.indexOf('=');
    const key = equals === -1 ? val : val.slice(0, equals);
    if (key !== '') target[key] = equals === -1 ? '' : val.slice(equals + 1);
  };
  for (const field of readCsvRecord(value)) {
    const equals = field.indexOf('=');
    const key = (equals === -1 ? field : field.slice(0, equals)).toLowerCase();
    const val = equals === -1 ? '' : field.slice(equals + 1);
    if (equals === -1) {
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
        mount.Source = val.startsWith('.') ? resolve(ctx.workFolder, val) : val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.Target = val;
        break;
      case 'readonly':
      case 'ro':
        mount.ReadOnly = bool(key, val);
        break;
      case 'consistency':
        mount.Consistency = val.toLowerCase();
        break;
      case 'bind-propagation':
        bindOptions().Propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bindOptions().NonRecursive = bool(key, val);
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
        volumeOptions().NoCopy = bool(key, val);
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
        try {
          tmpfsOptions().SizeBytes = parseBytes(val);
        } catch {
          throw new Error(`invalid value for ${key}: ${val}`);
        }
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

function translateMounts(
  flags: Flags,
  ctx: OptionsContext,
  hostConfig: Partial<HostConfigSettings>,
  bindMounts: BindMount[],
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
      bindMounts.push({
        hostPath: source,
        containerPath: mount.Target,
        readOnly,
        option: occurrence.written,
      });
    }
    // A local volume with `o=bind` and a device is a bind mount of that host path in disguise.
    const driverOptions = mount.VolumeOptions?.DriverConfig?.Options;
    const device = driverOptions?.device;
    if (
      mount.Type === 'volume' &&
      device !== undefined &&
      /\bbind\b/.test(driverOptions?.o ?? '')
    ) {
      bindMounts.push({
        hostPath: device,
        containerPath: mount.Target,
        readOnly,
        option: occurrence.written,
      });
    }
  }
  if (mounts.length > 0) hostConfig.Mounts = mounts;
}

function translatePorts(
  flags: Flags,
  config: Partial<ContainerCreateConfig>,
  hostConfig: Partial<HostConfigSettings>,
): void {
  const exposed: Record<string, EmptyObject> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const occurrence of flags.all('publish')) {
    let spec = occurrence.value;
    if (spec.includes('=')) {
      const params: Record<string, string> = { protocol: 'tcp' };
      for (const param of spec.split(',')) {
        const equals = param.indexOf('=');
        if (equals <= 0) {
          throw invalid(
            occurrence,
            `invalid publish opts format (should be name=value but got '${param}')`,
          );
        }
        params[param.slice(0, equals)] = param.slice(equals + 1);
      }
      spec = `${params.published ?? ''}:${params.target ?? ''}/${params.protocol ?? ''}`;
    }
    for (const mapping of parsed(occurrence, () => parsePortSpec(spec))) {
      exposed[mapping.port] = {};
      (bindings[mapping.port] ??= []).push(mapping.binding);
    }
  }
  for (const occurrence of flags.all('expose')) {
    if (occurrence.value.includes(':')) {
      throw invalid(occurrence, `invalid port format for --expose: ${occurrence.value}`);
    }
    const [proto, port] = splitProtoPort(occurrence.value);
    const range = parsed(occurrence, () => {
      try {
        return parsePortRange(port);
      } catch (error) {
        throw new Error(
          `invalid range format for --expose: ${occurrence.value}, error: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    });
    for (let p = range.start; p <= range.end; p += 1) exposed[`${p}/${proto}`] = {};
  }
  if (Object.keys(exposed).length > 0) config.ExposedPorts = exposed;
  if (Object.keys(bindings).length > 0) hostConfig.PortBindings = bindings;
  if (flags.boolean('publish-all') === true) hostConfig.PublishAllPorts = true;
}

function translateResources(flags: Flags, hostConfig: Partial<HostConfigSettings>): void {
  const set = <K extends keyof HostConfigSettings>(
    key: K,
    value: HostConfigSettings[K] | undefined,
  ): void => {
    if (value !== undefined) hostConfig[key] = value;
  };
  set('Memory', flags.number('memory', parseBytes));
  set('MemorySwap', flags.number('memory-swap', parseSwapBytes));
  set('MemoryReservation', flags.number('memory-reservation', parseBytes));
  set('KernelMemory', flags.number('kernel-memory', parseBytes));
  const swappiness = flags.last('memory-swappiness');
  if (swappiness !== undefined) {
    const value = parsed(swappiness, int64);
    if (value !== -1 && (value < 0 || value > 100)) {
      throw invalid(swappiness, `invalid value: ${value}. Valid memory swappiness range is 0-100`);
    }
    if (value !== -1) hostConfig.MemorySwappiness = value;
  }
  set('NanoCpus', flags.number('cpus', parseNanoCpus));
  set('CpuShares', flags.number('cpu-shares', int64));
  set('CpuPeriod', flags.number('cpu-period', int64));
  set('CpuQuota', flags.number('cpu-quota', int64));
  set('CpuRealtimePeriod', flags.number('cpu-rt-period', int64));
  set('CpuRealtimeRuntime', flags.number('cpu-rt-runtime', int64));
  const cpusetCpus = flags.string('cpuset-cpus');
  if (cpusetCpus !== undefined && cpusetCpus !== '') hostConfig.CpusetCpus = cpusetCpus;
  const cpusetMems = flags.string('cpuset-mems');
  if (cpusetMems !== undefined && cpusetMems !== '') hostConfig.CpusetMems = cpusetMems;
  set('PidsLimit', flags.number('pids-limit', int64));
  set('ShmSize', flags.number('shm-size', parseBytes));
  if (flags.boolean('oom-kill-disable') === true) hostConfig.OomKillDisable = true;
  set('OomScoreAdj', flags.number('oom-score-adj', int64));
  set('BlkioWeight', flags.number('blkio-weight', uint16));
  const cgroupParent = flags.string('cgroup-parent');
  if (cgroupParent !== undefined && cgroupParent !== '') hostConfig.CgroupParent = cgroupParent;

  const ulimits = new Map<string, Ulimit>();
  for (const occurrence of flags.all('ulimit')) {
    const ulimit = parsed(occurrence, parseUlimit);
    ulimits.set(ulimit.Name, ulimit);
  }
  if (ulimits.size > 0) {
    hostConfig.Ulimits = [...ulimits.values()].sort((a, b) => (a.Name < b.Name ? -1 : 1));
  }

  const weights = flags.all('blkio-weight-device').map((o) => parsed(o, parseWeightDevice));
  if (weights.length > 0) hostConfig.BlkioWeightDevice = weights;
  const throttles = [
    ['device-read-bps', 'BlkioDeviceReadBps', true],
    ['device-write-bps', 'BlkioDeviceWriteBps', true],
    ['device-read-iops', 'BlkioDeviceReadIOps', false],
    ['device-write-iops', 'BlkioDeviceWriteIOps', false],
  ] as const;
  for (const [name, key, bytes] of throttles) {
    const devices = flags.all(name).map((o) => parsed(o, (v) => parseThrottleDevice(v, bytes)));
    if (devices.length > 0) hostConfig[key] = devices;
  }
}

function parseUlimit(value: string): Ulimit {
  const equals = value.indexOf('=');
  if (equals === -1) throw new Error(`invalid ulimit argument: ${value} (write name=soft[:hard])`);
  const name = value.slice(0, equals);
  if (!ULIMIT_NAMES.has(name)) {
    throw new Error(`invalid ulimit type: ${name} (one of ${[...ULIMIT_NAMES].join(', ')})`);
  }
  const limits = value.slice(equals + 1).split(':');
  if (limits.length > 2) {
    throw new Error(
      `too many limit value arguments - ${value.slice(equals + 1)}, can only have up to two, \`soft[:hard]\``,
    );
  }
  const parse = (text: string): number => {
    if (!/^[+-]?\d+$/.test(text)) throw new Error(`'${text}' is not an integer limit`);
    return parseInteger(text.replace(/^\+/, ''), { bits: 64, signed: true });
  };
  const soft = parse(limits[0] ?? '');
  const hard = limits[1] === undefined ? soft : parse(limits[1]);
  if (hard !== -1) {
    if (soft === -1) {
      throw new Error(
        `ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`,
      );
    }
    if (soft > hard) {
      throw new Error(
        `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`,
      );
    }
  }
  return { Name: name, Soft: soft, Hard: hard };
}

function splitDevice(value: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new Error(`bad format: ${value} (write /dev/<device>:<value>)`);
  const path = value.slice(0, colon);
  if (!path.startsWith('/dev/')) throw new Error(`bad format for device path: ${value}`);
  return [path, value.slice(colon + 1)];
}

function parseWeightDevice(value: string): WeightDevice {
  const [path, weightText] = splitDevice(value);
  const weight = /^\d+$/.test(weightText) ? Number(weightText) : NaN;
  if (!(weight >= 0 && weight <= 65535) || (weight > 0 && (weight < 10 || weight > 1000))) {
    throw new Error(`invalid weight for device: ${value} (a weight is 10 to 1000, or 0)`);
  }
  return { Path: path, Weight: weight };
}

function parseThrottleDevice(value: string, bytes: boolean): ThrottleDevice {
  const [path, rateText] = splitDevice(value);
  try {
    const rate = bytes ? parseBytes(rateText) : parseInteger(rateText, { bits: 64, signed: false });
    if (!bytes && !/^\d+$/.test(rateText)) throw new Error('not decimal');
    return { Path: path, Rate: rate };
  } catch {
    throw new Error(
      bytes
        ? `invalid rate for device: ${value}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb`
        : `invalid rate for device: ${value}. The correct format is <device-path>:<number>. Number must be a positive integer`,
    );
  }
}

/** The client's normalizeCapabilities: upper case, `CAP_` prefix (but `ALL`), no duplicates, sorted. */
export function normalizeCapabilities(caps: string[]): string[] {
  const normalized = new Set<string>();
  for (const cap of caps) {
    const upper = cap.toUpperCase();
    normalized.add(upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`);
  }
  return [...normalized].sort();
}

function translateSecurity(
  flags: Flags,
  ctx: OptionsContext,
  hostConfig: Partial<HostConfigSettings>,
): void {
  const capAdd = flags.all('cap-add').map((o) => o.value);
  if (capAdd.length > 0) hostConfig.CapAdd = normalizeCapabilities(capAdd);
  const capDrop = flags.all('cap-drop').map((o) => o.value);
  if (capDrop.length > 0) hostConfig.CapDrop = normalizeCapabilities(capDrop);
  if (flags.boolean('privileged') === true) hostConfig.Privileged = true;

  const securityOpt: string[] = [];
  for (const occurrence of flags.all('security-opt')) {
    const opt = occurrence.value;
    if (opt === 'systempaths=unconfined') {
      hostConfig.MaskedPaths = [];
      hostConfig.ReadonlyPaths = [];
      continue;
    }
    let separator = opt.indexOf('=');
    if (separator === -1 && opt !== 'no-new-privileges') separator = opt.indexOf(':');
    const key = separator === -1 ? opt : opt.slice(0, separator);
    const val = separator === -1 ? '' : opt.slice(separator + 1);
    if ((separator === -1 || val === '') && key !== 'no-new-privileges') {
      throw invalid(occurrence, `invalid --security-opt: ${JSON.stringify(opt)}`);
    }
    if (key === 'seccomp' && val !== 'builtin' && val !== 'unconfined') {
      const text = readStepFile({ ...occurrence, value: val }, ctx, 'seccomp profile');
      let profile: unknown;
      try {
        profile = JSON.parse(text);
      } catch (error) {
        throw invalid(
          occurrence,
          `compacting json for seccomp profile (${val}) failed: ${describe(error)}`,
        );
      }
      securityOpt.push(`seccomp=${JSON.stringify(profile)}`);
      continue;
    }
    securityOpt.push(opt);
  }
  if (securityOpt.length > 0) hostConfig.SecurityOpt = securityOpt;

  const modes = [
    ['userns', 'UsernsMode', ['', 'host'], false, 'USER'],
    ['pid', 'PidMode', ['', 'host'], true, 'PID'],
    ['uts', 'UTSMode', ['', 'host'], false, 'UTS'],
    ['cgroupns', 'CgroupnsMode', ['', 'host', 'private'], false, 'CGROUP'],
  ] as const;
  for (const [name, key, allowed, container, label] of modes) {
    const occurrence = flags.last(name);
    if (occurrence === undefined) continue;
    const mode = occurrence.value;
    const validContainer = container && /^container:.+$/.test(mode);
    if (!allowed.some((a) => a === mode) && !validContainer) {
      throw invalid(
        occurrence,
        `--${name}: invalid ${label} mode (use ${allowed.filter((a) => a !== '').join(' or ')}${container ? ' or container:<name|id>' : ''})`,
      );
    }
    if (mode !== '') hostConfig[key] = mode;
  }
  const ipc = flags.string('ipc');
  if (ipc !== undefined && ipc !== '') hostConfig.IpcMode = ipc;
  const groups = flags.all('group-add').map((o) => o.value);
  if (groups.length > 0) hostConfig.GroupAdd = groups;
}

function translateDevices(flags: Flags, hostConfig: Partial<HostConfigSettings>): void {
  const devices: DeviceMapping[] = [];
  const cdi: string[] = [];
  for (const occurrence of flags.all('device')) {
    if (CDI_NAME.test(occurrence.value)) cdi.push(occurrence.value);
    else devices.push(parsed(occurrence, parseDevice));
  }
  if (devices.length > 0) hostConfig.Devices = devices;
  const requests: DeviceRequest[] = flags.all('gpus').map((o) => parsed(o, parseGpuRequest));
  if (cdi.length > 0) requests.push({ Driver: 'cdi', DeviceIDs: cdi });
  if (requests.length > 0) hostConfig.DeviceRequests = requests;
  const rules = flags.all('device-cgroup-rule');
  for (const rule of rules) {
    if (!DEVICE_CGROUP_RULE.test(rule.value)) {
      throw invalid(rule, `invalid device cgroup format '${rule.value}' (write e.g. 'c 1:3 rwm')`);
    }
  }
  if (rules.length > 0) hostConfig.DeviceCgroupRules = rules.map((o) => o.value);
}

function isDeviceMode(mode: string): boolean {
  return mode !== '' && /^[rwm]+$/.test(mode) && new Set(mode).size === mode.length;
}

/** The CLI's validateLinuxPath + parseLinuxDevice: `host[:container][:rwm]`. */
function parseDevice(value: string): DeviceMapping {
  const parts = value.split(':');
  const [host = '', second = '', third = ''] = parts;
  if (parts.length > 3 || host === '') throw new Error(`bad format for path: ${value}`);
  let containerPath: string;
  let mapping: DeviceMapping;
  if (parts.length === 1) {
    containerPath = host;
    const clean = posix.normalize(host);
    mapping = { PathOnHost: clean, PathInContainer: clean, CgroupPermissions: 'rwm' };
  } else if (parts.length === 2 && isDeviceMode(second)) {
    containerPath = host;
    const clean = posix.normalize(host);
    mapping = { PathOnHost: clean, PathInContainer: clean, CgroupPermissions: second };
  } else if (parts.length === 2) {
    containerPath = second;
    const clean = posix.normalize(second);
    mapping = { PathOnHost: host, PathInContainer: clean, CgroupPermissions: 'rwm' };
  } else {
    containerPath = second;
    if (!isDeviceMode(third)) throw new Error(`bad mode specified: ${third}`);
    mapping = isDeviceMode(second)
      ? { PathOnHost: host, PathInContainer: host, CgroupPermissions: second }
      : { PathOnHost: host, PathInContainer: second, CgroupPermissions: third };
  }
  if (!posix.isAbsolute(containerPath)) throw new Error(`${containerPath} is not an absolute path`);
  return mapping;
}

function parseGpuRequest(value: string): DeviceRequest {
  const request: DeviceRequest = {};
  const seen = new Set<string>();
  const count = (text: string): number => {
    if (text === 'all') return -1;
    if (!/^[+-]?\d+$/.test(text)) {
      throw new Error(`invalid count (${text}): value must be either "all" or an integer`);
    }
    return Number(text);
  };
  for (const field of readCsvRecord(value)) {
    const equals = field.indexOf('=');
    const key = equals === -1 ? field : field.slice(0, equals);
    const val = field.slice(equals + 1);
    if (seen.has(key)) throw new Error(`gpu request key '${key}' can be specified only once`);
    seen.add(key);
    if (equals === -1) {
      seen.add('count');
      request.Count = count(key);
      continue;
    }
    switch (key) {
      case 'driver':
        request.Driver = val;
        break;
      case 'count':
        request.Count = count(val);
        break;
      case 'device':
        request.DeviceIDs = val.split(',');
        break;
      case 'capabilities':
        request.Capabilities = [[...val.split(','), 'gpu']];
        break;
      case 'options': {
        const options: Record<string, string> = {};
        for (const option of readCsvRecord(val)) {
          const eq = option.indexOf('=');
          options[eq === -1 ? option : option.slice(0, eq)] = eq === -1 ? '' : option.slice(eq + 1);
        }
        request.Options = options;
        break;
      }
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!seen.has('count') && request.DeviceIDs === undefined) request.Count = 1;
  request.Options ??= {};
  request.Capabilities ??= [['gpu']];
  return request;
}

function translateHealthcheck(
  flags: Flags,
  config: Partial<ContainerCreateConfig>,
  warnings: string[],
): void {
  const command = flags.string('health-cmd') ?? '';
  const durations = [
    ['health-interval', 'Interval'],
    ['health-timeout', 'Timeout'],
    ['health-start-period', 'StartPeriod'],
    ['health-start-interval', 'StartInterval'],
  ] as const;
  const health: HealthConfig = {};
  let any = command !== '';
  for (const [name, key] of durations) {
    const occurrence = flags.last(name);
    if (occurrence === undefined) continue;
    const value = parsed(occurrence, parseDuration);
    if (value < 0) throw invalid(occurrence, `--${name} cannot be negative`);
    if (value !== 0) {
      health[key] = value;
      any = true;
    }
  }
  if (health.StartInterval !== undefined) {
    warnings.push(
      '--health-start-interval needs Docker Engine API 1.44 or later; older engines ignore it.',
    );
  }
  const retries = flags.last('health-retries');
  if (retries !== undefined) {
    const value = parsed(retries, int64);
    if (value < 0) throw invalid(retries, '--health-retries cannot be negative');
    if (value !== 0) {
      health.Retries = value;
      any = true;
    }
  }
  const none = flags.last('no-healthcheck');
  if (none !== undefined && parsed(none, parseBoolean)) {
    if (any) throw invalid(none, '--no-healthcheck conflicts with --health-* options');
    config.Healthcheck = { Test: ['NONE'] };
    return;
  }
  if (!any) return;
  if (command !== '') health.Test = ['CMD-SHELL', command];
  config.Healthcheck = health;
}

function translateRest(
  flags: Flags,
  hostConfig: Partial<HostConfigSettings>,
  warnings: string[],
): void {
  const init = flags.boolean('init');
  if (init !== undefined) hostConfig.Init = init;
  const sysctls = flags.all('sysctl');
  if (sysctls.length > 0) {
    hostConfig.Sysctls = {};
    for (const occurrence of sysctls) {
      const equals = occurrence.value.indexOf('=');
      const key = equals === -1 ? '' : occurrence.value.slice(0, equals);
      if (key === '' || !(SYSCTL_NAMES.has(key) || /^(net\.|fs\.mqueue\.)/.test(key))) {
        throw invalid(
          occurrence,
          `sysctl '${occurrence.value}' is not allowed (only namespaced ones: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*)`,
        );
      }
      hostConfig.Sysctls[key] = occurrence.value.slice(equals + 1);
    }
  }
  const runtime = flags.string('runtime');
  if (runtime !== undefined && runtime !== '') hostConfig.Runtime = runtime;
  const isolation = flags.string('isolation');
  if (isolation !== undefined && isolation !== '') hostConfig.Isolation = isolation;
  const annotations = flags.all('annotation');
  if (annotations.length > 0) {
    hostConfig.Annotations = {};
    warnings.push('--annotation needs Docker Engine API 1.43 or later; older engines ignore it.');
    for (const occurrence of annotations) {
      const equals = occurrence.value.indexOf('=');
      const key = equals === -1 ? occurrence.value : occurrence.value.slice(0, equals);
      hostConfig.Annotations[key] = equals === -1 ? '' : occurrence.value.slice(equals + 1);
    }
  }
  const logDriver = flags.last('log-driver');
  const logOpts = flags.all('log-opt');
  if (logDriver !== undefined || logOpts.length > 0) {
    const type = logDriver?.value ?? '';
    if (logDriver !== undefined && type === 'none' && logOpts.length > 0) {
      throw invalid(logDriver, `invalid logging opts for driver ${type}`);
    }
    const config: Record<string, string> = {};
    for (const occurrence of logOpts) {
      const equals = occurrence.value.indexOf('=');
      const key = equals === -1 ? occurrence.value : occurrence.value.slice(0, equals);
      config[key] = equals === -1 ? '' : occurrence.value.slice(equals + 1);
    }
    hostConfig.LogConfig = { Type: type, Config: config };
    const written = [logDriver, ...logOpts].flatMap((o) => (o === undefined ? [] : [o.written]));
    warnings.push(
      `${written.join(' ')} ignored: cuttle reads the step's output from files and runs step containers with the "none" log driver.`,
    );
  }
  const restart = flags.last('restart');
  if (restart !== undefined && restart.value !== '' && restart.value !== 'no') {
    throw invalid(
      restart,
      'a step container must not restart: it runs the step once and cuttle collects its exit code (only --restart no is accepted)',
    );
  }
}

function isUserDefinedNetwork(mode: string): boolean {
  return !['default', 'bridge', 'host', 'none'].includes(mode) && !mode.startsWith('container:');
}

interface NetworkAttachment {
  target: string;
  aliases: string[];
  driverOpts?: Record<string, string>;
  links: string[];
  ipv4: string;
  ipv6: string;
  linkLocalIps: string[];
  mac: string;
  occurrence: FlagOccurrence;
}

function parseNetworkAttachment(occurrence: FlagOccurrence): NetworkAttachment {
  const value = occurrence.value;
  const attachment: NetworkAttachment = {
    target: value,
    aliases: [],
    links: [],
    ipv4: '',
    ipv6: '',
    linkLocalIps: [],
    mac: '',
    occurrence,
  };
  if (!/\w+=\w+(,\w+=\w+)*/.test(value)) return attachment;
  attachment.target = '';
  for (const field of parsed(occurrence, readCsvRecord)) {
    const lower = field.toLowerCase();
    const equals = lower.indexOf('=');
    if (equals <= 0) throw invalid(occurrence, `invalid field ${field}`);
    const key = lower.slice(0, equals).trim();
    const val = lower.slice(equals + 1).trim();
    switch (key) {
      case 'name':
        attachment.target = val;
        break;
      case 'alias':
        attachment.aliases.push(val);
        break;
      case 'ip':
        attachment.ipv4 = val;
        break;
      case 'ip6':
        attachment.ipv6 = val;
        break;
      case 'mac-address':
        attachment.mac = val;
        break;
      case 'link-local-ip':
        attachment.linkLocalIps.push(val);
        break;
      case 'driver-opt': {
        const eq = val.indexOf('=');
        if (eq <= 0) {
          throw invalid(occurrence, 'invalid key value pair format in driver options');
        }
        (attachment.driverOpts ??= {})[val.slice(0, eq).trim()] = val.slice(eq + 1).trim();
        break;
      }
      default:
        throw invalid(occurrence, `invalid field key ${key}`);
    }
  }
  if (attachment.target === '') throw invalid(occurrence, 'network name/id is not specified');
  return attachment;
}

function translateNetworking(
  flags: Flags,
  config: Partial<ContainerCreateConfig>,
  hostConfig: Partial<HostConfigSettings>,
): { EndpointsConfig: Record<string, EndpointSettings> } | undefined {
  const extraHosts: string[] = [];
  for (const occurrence of flags.all('add-host')) {
    let separator = occurrence.value.indexOf('=');
    if (separator === -1) separator = occurrence.value.indexOf(':');
    const host = separator === -1 ? '' : occurrence.value.slice(0, separator);
    let address = occurrence.value.slice(separator + 1);
    if (host === '' || host.includes(':')) {
      throw invalid(occurrence, `bad format for add-host: ${JSON.stringify(occurrence.value)}`);
    }
    if (address !== 'host-gateway') {
      if (address.length > 2 && address.startsWith('[') && address.endsWith(']')) {
        address = address.slice(1, -1);
      }
      if (canonicalIp(address.trim()) === undefined) {
        throw invalid(occurrence, `invalid IP address in add-host: ${JSON.stringify(address)}`);
      }
    }
    extraHosts.push(`${host}:${address}`);
  }
  if (extraHosts.length > 0) hostConfig.ExtraHosts = extraHosts;
  const dns = flags.all('dns').map((occurrence) => {
    const ip = canonicalIp(occurrence.value.trim());
    if (ip === undefined) {
      throw invalid(occurrence, `IP address is not correctly formatted: ${occurrence.value}`);
    }
    return ip;
  });
  if (dns.length > 0) hostConfig.Dns = dns;
  const dnsOptions = flags.all('dns-option').map((o) => o.value);
  if (dnsOptions.length > 0) hostConfig.DnsOptions = dnsOptions;
  const dnsSearch = flags.all('dns-search').map((o) => parsed(o, validateDnsSearch));
  if (dnsSearch.length > 0) hostConfig.DnsSearch = dnsSearch;
  const links = flags.all('link');
  for (const link of links) {
    const parts = link.value.split(':');
    if (link.value === '' || parts.length > 2) {
      throw invalid(link, `bad format for links: ${link.value} (write name[:alias])`);
    }
  }
  if (links.length > 0) hostConfig.Links = links.map((o) => o.value);

  const mac = flags.last('mac-address');
  if (mac !== undefined && mac.value !== '') {
    if (!isValidMac(mac.value.trim()))
      throw invalid(mac, `${mac.value} is not a valid mac address`);
    config.MacAddress = mac.value;
  }
  const ipv4 = flags.last('ip');
  const ipv6 = flags.last('ip6');
  for (const ip of [ipv4, ipv6]) {
    if (ip !== undefined && ip.value !== '' && canonicalIp(ip.value) === undefined) {
      throw invalid(ip, `invalid string being converted to IP address: ${ip.value}`);
    }
  }
  const aliases = flags.all('network-alias').map((o) => o.value);
  const linkLocal = flags.all('link-local-ip').map((o) => o.value);

  const attachments = flags.all('network').map(parseNetworkAttachment);
  const first = attachments[0];
  hostConfig.NetworkMode = first?.target ?? 'default';
  if (attachments.length === 0 || hostConfig.NetworkMode === 'default') {
    // No --network: the CLI attaches the flags to the "default" network.
    delete hostConfig.NetworkMode;
  }
  const target = first?.target ?? 'default';
  const main: NetworkAttachment = first ?? {
    target,
    aliases: [],
    links: [],
    ipv4: '',
    ipv6: '',
    linkLocalIps: [],
    mac: '',
    occurrence: flags.all('network-alias')[0] ??
      flags.all('ip')[0] ?? {
        definition: { name: 'network', takesValue: true, repeatable: true, mapsTo: '' },
        value: 'default',
        written: '--network default',
      },
  };
  const conflict = (what: string): never => {
    throw invalid(main.occurrence, `conflicting options: cannot specify both ${what}`);
  };
  if (main.aliases.length > 0 && aliases.length > 0)
    conflict('--network-alias and per-network alias');
  if (main.ipv4 !== '' && ipv4 !== undefined) conflict('--ip and per-network IPv4 address');
  if (main.ipv6 !== '' && ipv6 !== undefined) conflict('--ip6 and per-network IPv6 address');
  if (main.mac !== '' && mac !== undefined) conflict('--mac-address and per-network MAC address');
  if (main.linkLocalIps.length > 0 && linkLocal.length > 0) {
    conflict('--link-local-ip and per-network link-local IP addresses');
  }
  if (aliases.length > 0) main.aliases = aliases;
  if (isUserDefinedNetwork(main.target) && links.length > 0) main.links = links.map((o) => o.value);
  if (ipv4 !== undefined && ipv4.value !== '') main.ipv4 = ipv4.value;
  if (ipv6 !== undefined && ipv6.value !== '') main.ipv6 = ipv6.value;
  if (main.mac !== '') {
    // API 1.41 has one MAC address per container, in Config.
    if (!isValidMac(main.mac))
      throw invalid(main.occurrence, `${main.mac} is not a valid mac address`);
    config.MacAddress = main.mac;
  }
  if (linkLocal.length > 0) main.linkLocalIps = linkLocal;

  const endpoints: Record<string, EndpointSettings> = {};
  const all = attachments.length === 0 ? [main] : [main, ...attachments.slice(1)];
  let userDefined = false;
  let builtIn = false;
  for (const attachment of all) {
    if (attachment.target.trim() === '')
      throw invalid(attachment.occurrence, 'no name set for network');
    if (isUserDefinedNetwork(attachment.target)) userDefined = true;
    else {
      builtIn = true;
      if (attachment.aliases.length > 0) {
        throw invalid(
          attachment.occurrence,
          'network-scoped aliases are only supported for user-defined networks',
        );
      }
    }
    if (endpoints[attachment.target] !== undefined) {
      throw invalid(
        attachment.occurrence,
        `network ${JSON.stringify(attachment.target)} is specified multiple times`,
      );
    }
    const endpoint: EndpointSettings = {};
    if (attachment.aliases.length > 0) endpoint.Aliases = attachment.aliases;
    if (attachment.driverOpts !== undefined) endpoint.DriverOpts = attachment.driverOpts;
    if (attachment.links.length > 0) endpoint.Links = attachment.links;
    if (attachment.ipv4 !== '' || attachment.ipv6 !== '' || attachment.linkLocalIps.length > 0) {
      endpoint.IPAMConfig = {
        ...(attachment.ipv4 === '' ? {} : { IPv4Address: attachment.ipv4 }),
        ...(attachment.ipv6 === '' ? {} : { IPv6Address: attachment.ipv6 }),
        ...(attachment.linkLocalIps.length === 0 ? {} : { LinkLocalIPs: attachment.linkLocalIps }),
      };
    }
    if (Object.keys(endpoint).length > 0) endpoints[attachment.target] = endpoint;
  }
  if (userDefined && builtIn) {
    throw invalid(
      main.occurrence,
      'conflicting options: cannot attach both user-defined and non-user-defined network-modes',
    );
  }
  return Object.keys(endpoints).length === 0 ? undefined : { EndpointsConfig: endpoints };
}
