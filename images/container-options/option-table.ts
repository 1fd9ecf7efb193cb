/**
 * Every flag of `docker run` / `docker create` (docker CLI 28), as pflag parses them: long name,
 * one-letter alias, whether it takes a value, whether it may be repeated, what it maps to in the
 * Engine API, and — for the flags cuttle refuses — why.
 */
export interface OptionDefinition {
  /** The long name without dashes, e.g. `memory`. */
  readonly name: string;
  /** The one-letter alias without the dash, e.g. `m`. */
  readonly short?: string;
  /** Boolean flags take no value (`--init`, or `--init=false`); all others take exactly one. */
  readonly takesValue: boolean;
  /** List flags collect every occurrence; the others keep the last one, as pflag does. */
  readonly repeatable: boolean;
  /** For hidden aliases (`--net`), the flag they stand for (`network`). */
  readonly aliasOf?: string;
  /** What it sets, for the docs and error messages. */
  readonly mapsTo: string;
  /** Set when cuttle refuses the flag: the explanation given to the user. */
  readonly refusal?: string;
}

function value(name: string, mapsTo: string, short?: string): OptionDefinition {
  return { name, takesValue: true, repeatable: false, mapsTo, ...(short ? { short } : {}) };
}
function list(name: string, mapsTo: string, short?: string): OptionDefinition {
  return { name, takesValue: true, repeatable: true, mapsTo, ...(short ? { short } : {}) };
}
function flag(name: string, mapsTo: string, short?: string): OptionDefinition {
  return { name, takesValue: false, repeatable: false, mapsTo, ...(short ? { short } : {}) };
}
function refused(
  definition: OptionDefinition,
  refusal: string,
): OptionDefinition & { refusal: string } {
  return { ...definition, refusal };
}
function alias(name: string, of: OptionDefinition): OptionDefinition {
  return { ...of, name, aliasOf: of.name };
}

const NOT_INTERACTIVE =
  'cuttle runs the step non-interactively and reads its output from files, so the container has no terminal or attached streams';

const WINDOWS_ONLY =
  'it is only supported by Docker daemons running on Windows, and cuttle runs Linux step containers';

const network = list('network', 'HostConfig.NetworkMode, NetworkingConfig.EndpointsConfig');
const networkAlias = list('network-alias', 'NetworkingConfig.EndpointsConfig[network].Aliases');
const dnsOption = list('dns-option', 'HostConfig.DnsOptions');

export const OPTION_TABLE: readonly OptionDefinition[] = [
  // Environment and identity
  list('env', 'Config.Env', 'e'),
  list('env-file', 'Config.Env (read from a file inside the step folder)'),
  value('user', 'Config.User', 'u'),
  list('group-add', 'HostConfig.GroupAdd'),
  value('workdir', 'Config.WorkingDir (the script still starts in the step folder)', 'w'),
  value('entrypoint', "Config.Entrypoint (ignored with a warning: the step's command runs)"),
  list('label', 'Config.Labels (dev.cuttle.* are reserved)', 'l'),
  list('label-file', 'Config.Labels (read from a file inside the step folder)'),
  value('hostname', 'Config.Hostname', 'h'),
  value('domainname', 'Config.Domainname'),
  value('stop-signal', 'Config.StopSignal'),
  value('stop-timeout', 'Config.StopTimeout'),
  value('platform', 'the create request’s platform'),
  // Volumes and mounts
  list('volume', 'HostConfig.Binds, or Config.Volumes for anonymous volumes', 'v'),
  list('mount', 'HostConfig.Mounts'),
  list('tmpfs', 'HostConfig.Tmpfs'),
  flag('read-only', 'HostConfig.ReadonlyRootfs'),
  list('volumes-from', 'HostConfig.VolumesFrom'),
  value('volume-driver', 'HostConfig.VolumeDriver'),
  list('storage-opt', 'HostConfig.StorageOpt'),
  // Networking
  network,
  alias('net', network),
  networkAlias,
  alias('net-alias', networkAlias),
  list('add-host', 'HostConfig.ExtraHosts'),
  list('dns', 'HostConfig.Dns'),
  dnsOption,
  alias('dns-opt', dnsOption),
  list('dns-search', 'HostConfig.DnsSearch'),
  value('mac-address', 'Config.MacAddress'),
  value('ip', 'NetworkingConfig.EndpointsConfig[network].IPAMConfig.IPv4Address'),
  value('ip6', 'NetworkingConfig.EndpointsConfig[network].IPAMConfig.IPv6Address'),
  list('link-local-ip', 'NetworkingConfig.EndpointsConfig[network].IPAMConfig.LinkLocalIPs'),
  list('link', 'HostConfig.Links, or the endpoint’s Links on a user-defined network'),
  list('publish', 'HostConfig.PortBindings and Config.ExposedPorts', 'p'),
  flag('publish-all', 'HostConfig.PublishAllPorts', 'P'),
  list('expose', 'Config.ExposedPorts'),
  // Resources
  value('memory', 'HostConfig.Memory', 'm'),
  value('memory-swap', 'HostConfig.MemorySwap'),
  value('memory-reservation', 'HostConfig.MemoryReservation'),
  value('memory-swappiness', 'HostConfig.MemorySwappiness'),
  value('kernel-memory', 'HostConfig.KernelMemory'),
  value('cpus', 'HostConfig.NanoCpus'),
  value('cpu-shares', 'HostConfig.CpuShares', 'c'),
  value('cpuset-cpus', 'HostConfig.CpusetCpus'),
  value('cpuset-mems', 'HostConfig.CpusetMems'),
  value('cpu-period', 'HostConfig.CpuPeriod'),
  value('cpu-quota', 'HostConfig.CpuQuota'),
  value('cpu-rt-period', 'HostConfig.CpuRealtimePeriod'),
  value('cpu-rt-runtime', 'HostConfig.CpuRealtimeRuntime'),
  refused(value('cpu-count', 'HostConfig.CpuCount (Windows only)'), WINDOWS_ONLY),
  refused(value('cpu-percent', 'HostConfig.CpuPercent (Windows only)'), WINDOWS_ONLY),
  refused(value('io-maxbandwidth', 'HostConfig.IOMaximumBandwidth (Windows only)'), WINDOWS_ONLY),
  refused(value('io-maxiops', 'HostConfig.IOMaximumIOps (Windows only)'), WINDOWS_ONLY),
  value('pids-limit', 'HostConfig.PidsLimit'),
  list('ulimit', 'HostConfig.Ulimits'),
  value('shm-size', 'HostConfig.ShmSize'),
  flag('oom-kill-disable', 'HostConfig.OomKillDisable'),
  value('oom-score-adj', 'HostConfig.OomScoreAdj'),
  value('blkio-weight', 'HostConfig.BlkioWeight'),
  list('blkio-weight-device', 'HostConfig.BlkioWeightDevice'),
  list('device-read-bps', 'HostConfig.BlkioDeviceReadBps'),
  list('device-write-bps', 'HostConfig.BlkioDeviceWriteBps'),
  list('device-read-iops', 'HostConfig.BlkioDeviceReadIOps'),
  list('device-write-iops', 'HostConfig.BlkioDeviceWriteIOps'),
  value('cgroup-parent', 'HostConfig.CgroupParent'),
  // Security and namespaces
  list('cap-add', 'HostConfig.CapAdd'),
  list('cap-drop', 'HostConfig.CapDrop'),
  list('security-opt', 'HostConfig.SecurityOpt (and MaskedPaths/ReadonlyPaths)'),
  flag('privileged', 'HostConfig.Privileged'),
  value('userns', 'HostConfig.UsernsMode'),
  value('ipc', 'HostConfig.IpcMode'),
  value('pid', 'HostConfig.PidMode'),
  value('uts', 'HostConfig.UTSMode'),
  value('cgroupns', 'HostConfig.CgroupnsMode'),
  list('device', 'HostConfig.Devices, or a CDI DeviceRequest'),
  list('device-cgroup-rule', 'HostConfig.DeviceCgroupRules'),
  list('gpus', 'HostConfig.DeviceRequests'),
  // The rest
  flag('init', 'HostConfig.Init'),
  list('sysctl', 'HostConfig.Sysctls'),
  value('runtime', 'HostConfig.Runtime'),
  value('isolation', 'HostConfig.Isolation'),
  list('annotation', 'HostConfig.Annotations'),
  value('log-driver', 'HostConfig.LogConfig.Type (ignored with a warning)'),
  list('log-opt', 'HostConfig.LogConfig.Config (ignored with a warning)'),
  value('health-cmd', 'Config.Healthcheck.Test'),
  value('health-interval', 'Config.Healthcheck.Interval'),
  value('health-timeout', 'Config.Healthcheck.Timeout'),
  value('health-start-period', 'Config.Healthcheck.StartPeriod'),
  value('health-start-interval', 'Config.Healthcheck.StartInterval'),
  value('health-retries', 'Config.Healthcheck.Retries'),
  flag('no-healthcheck', 'Config.Healthcheck.Test = ["NONE"]'),
  value('restart', 'HostConfig.RestartPolicy (only "no")'),
  // Refused: they would break the step or make no sense for it.
  refused(
    flag('rm', 'HostConfig.AutoRemove'),
    'cuttle removes the step container itself after collecting its exit code and artifacts; --rm would remove it too early',
  ),
  refused(
    flag('detach', '-', 'd'),
    'cuttle always runs step containers detached and waits for them itself',
  ),
  refused(flag('interactive', 'Config.OpenStdin', 'i'), NOT_INTERACTIVE),
  refused(flag('tty', 'Config.Tty', 't'), NOT_INTERACTIVE),
  refused(list('attach', 'Config.Attach*', 'a'), NOT_INTERACTIVE),
  refused(value('detach-keys', '-'), NOT_INTERACTIVE),
  refused(flag('sig-proxy', '-'), NOT_INTERACTIVE),
  refused(
    value('name', 'the container name'),
    'cuttle names and labels step containers itself (a fixed name would clash between steps and runs)',
  ),
  refused(value('cidfile', '-'), 'it would write a file on the worker outside the step folder'),
  refused(
    value('pull', '-'),
    'cuttle pulls the step image itself, as the step’s image settings say',
  ),
  refused(flag('quiet', '-', 'q'), 'it only quiets the docker CLI’s pull output; remove it'),
  refused(
    flag('use-api-socket', '-'),
    'it would hand the worker’s Docker socket and registry credentials to the step',
  ),
  refused(
    flag('disable-content-trust', '-'),
    'cuttle does not verify image signatures with Docker Content Trust; remove it',
  ),
  refused(flag('help', '-'), 'it prints the docker CLI’s help; remove it'),
];

const BY_LONG = new Map(OPTION_TABLE.map((definition) => [definition.name, definition]));
const BY_SHORT = new Map(
  OPTION_TABLE.flatMap((definition) =>
    definition.short === undefined ? [] : [[definition.short, definition] as const],
  ),
);

export function findLongOption(name: string): OptionDefinition | undefined {
  return BY_LONG.get(name);
}

export function findShortOption(letter: string): OptionDefinition | undefined {
  return BY_SHORT.get(letter);
}

/** The canonical long name (`net` → `network`). */
export function canonicalName(definition: OptionDefinition): string {
  return definition.aliasOf ?? definition.name;
}
