// Resources: memory, CPUs, pids, ulimits, shared memory, OOM settings, block I/O and the cgroup
// parent.
import type {
  HostConfigSettings,
  ThrottleDevice,
  TranslatedOptions,
  Ulimit,
  WeightDevice,
} from '../container-settings.js';
import { invalid, parsed, type Flags } from '../given-flags.js';
import {
  parseBytes,
  parseInt64,
  parseInteger,
  parseNanoCpus,
  parseSwapBytes,
  parseUint16,
} from '../units.js';
import { splitKeyValue } from '../value-syntax.js';

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

export function translateResources(flags: Flags, { hostConfig }: TranslatedOptions): void {
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
    const value = parsed(swappiness, parseInt64);
    if (value !== -1 && (value < 0 || value > 100)) {
      throw invalid(swappiness, `invalid value: ${value}. Valid memory swappiness range is 0-100`);
    }
    if (value !== -1) hostConfig.MemorySwappiness = value;
  }
  set('NanoCpus', flags.number('cpus', parseNanoCpus));
  set('CpuShares', flags.number('cpu-shares', parseInt64));
  set('CpuPeriod', flags.number('cpu-period', parseInt64));
  set('CpuQuota', flags.number('cpu-quota', parseInt64));
  set('CpuRealtimePeriod', flags.number('cpu-rt-period', parseInt64));
  set('CpuRealtimeRuntime', flags.number('cpu-rt-runtime', parseInt64));
  set('CpusetCpus', flags.nonEmpty('cpuset-cpus'));
  set('CpusetMems', flags.nonEmpty('cpuset-mems'));
  set('PidsLimit', flags.number('pids-limit', parseInt64));
  set('ShmSize', flags.number('shm-size', parseBytes));
  if (flags.boolean('oom-kill-disable') === true) hostConfig.OomKillDisable = true;
  set('OomScoreAdj', flags.number('oom-score-adj', parseInt64));
  set('BlkioWeight', flags.number('blkio-weight', parseUint16));
  set('CgroupParent', flags.nonEmpty('cgroup-parent'));

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

/** `--ulimit name=soft[:hard]`; -1 is unlimited. */
function parseUlimit(value: string): Ulimit {
  const [name, limitsText] = splitKeyValue(value);
  if (limitsText === undefined) {
    throw new Error(`invalid ulimit argument: ${value} (write name=soft[:hard])`);
  }
  if (!ULIMIT_NAMES.has(name)) {
    throw new Error(`invalid ulimit type: ${name} (one of ${[...ULIMIT_NAMES].join(', ')})`);
  }
  const limits = limitsText.split(':');
  if (limits.length > 2) {
    throw new Error(
      `too many limit value arguments - ${limitsText}, can only have up to two, \`soft[:hard]\``,
    );
  }
  const parse = (text: string): number => {
    if (!/^[+-]?\d+$/.test(text)) throw new Error(`'${text}' is not an integer limit`);
    return parseInt64(text.replace(/^\+/, ''));
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

/** `/dev/<device>:<value>` → [path, value]. */
function splitDevice(value: string): [string, string] {
  const [path, rest] = splitKeyValue(value, ':');
  if (path === '' || rest === undefined) {
    throw new Error(`bad format: ${value} (write /dev/<device>:<value>)`);
  }
  if (!path.startsWith('/dev/')) throw new Error(`bad format for device path: ${value}`);
  return [path, rest];
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
