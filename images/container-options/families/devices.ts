// Host devices: --device (a path, or a CDI name), --device-cgroup-rule and --gpus.
import { posix } from 'node:path';
import type { DeviceMapping, DeviceRequest, TranslatedOptions } from '../container-settings.js';
import { invalid, parsed, type Flags } from '../given-flags.js';
import { readCsvRecord, setKeyValue, splitKeyValue } from '../value-syntax.js';

const DEVICE_CGROUP_RULE = /^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$/;
// A CDI device name: vendor.com/class=name.
const CDI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*\/[a-zA-Z0-9][a-zA-Z0-9_.-]*=[a-zA-Z0-9_.:-]+$/;

export function translateDevices(flags: Flags, { hostConfig }: TranslatedOptions): void {
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

/** The CLI's GPU request parser: `all`, a count, or CSV `count=…,driver=…,device=…,…` fields. */
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
    const [key, val] = splitKeyValue(field);
    if (seen.has(key)) throw new Error(`gpu request key '${key}' can be specified only once`);
    seen.add(key);
    if (val === undefined) {
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
        for (const option of readCsvRecord(val)) setKeyValue(options, option);
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
