// cuttle's own types for the Engine API settings that container options produce. Field names and
// JSON shapes are the Engine API's (POST /containers/create, API 1.41 and later), so the objects can
// be sent as they are; dockerode's types stay inside images/.

export type EmptyObject = Record<string, never>;

export interface HealthConfig {
  Test?: string[];
  /** Nanoseconds. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The top-level fields of a create request that options can set. */
export interface ContainerCreateConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  Env: string[];
  Labels: Record<string, string>;
  WorkingDir: string;
  Entrypoint: string[];
  ExposedPorts: Record<string, EmptyObject>;
  Volumes: Record<string, EmptyObject>;
  StopSignal: string;
  StopTimeout: number;
  Healthcheck: HealthConfig;
  MacAddress: string;
}

export interface MountSpec {
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: {
    Propagation?: string;
    NonRecursive?: boolean;
    ReadOnlyNonRecursive?: boolean;
    ReadOnlyForceRecursive?: boolean;
  };
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string>;
    DriverConfig?: { Name?: string; Options?: Record<string, string> };
    Subpath?: string;
  };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

export interface DeviceRequest {
  Driver?: string;
  Count?: number;
  DeviceIDs?: string[];
  Capabilities?: string[][];
  Options?: Record<string, string>;
}

export interface WeightDevice {
  Path: string;
  Weight: number;
}

export interface ThrottleDevice {
  Path: string;
  Rate: number;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** The HostConfig fields that options can set. */
export interface HostConfigSettings {
  Binds: string[];
  Mounts: MountSpec[];
  Tmpfs: Record<string, string>;
  ReadonlyRootfs: boolean;
  VolumesFrom: string[];
  VolumeDriver: string;
  StorageOpt: Record<string, string>;
  NetworkMode: string;
  ExtraHosts: string[];
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  Links: string[];
  PortBindings: Record<string, PortBinding[]>;
  PublishAllPorts: boolean;
  Memory: number;
  MemorySwap: number;
  MemoryReservation: number;
  MemorySwappiness: number;
  KernelMemory: number;
  NanoCpus: number;
  CpuShares: number;
  CpusetCpus: string;
  CpusetMems: string;
  CpuPeriod: number;
  CpuQuota: number;
  CpuRealtimePeriod: number;
  CpuRealtimeRuntime: number;
  PidsLimit: number;
  Ulimits: Ulimit[];
  ShmSize: number;
  OomKillDisable: boolean;
  OomScoreAdj: number;
  BlkioWeight: number;
  BlkioWeightDevice: WeightDevice[];
  BlkioDeviceReadBps: ThrottleDevice[];
  BlkioDeviceWriteBps: ThrottleDevice[];
  BlkioDeviceReadIOps: ThrottleDevice[];
  BlkioDeviceWriteIOps: ThrottleDevice[];
  CgroupParent: string;
  CapAdd: string[];
  CapDrop: string[];
  SecurityOpt: string[];
  MaskedPaths: string[];
  ReadonlyPaths: string[];
  Privileged: boolean;
  UsernsMode: string;
  IpcMode: string;
  PidMode: string;
  UTSMode: string;
  CgroupnsMode: string;
  Devices: DeviceMapping[];
  DeviceCgroupRules: string[];
  DeviceRequests: DeviceRequest[];
  GroupAdd: string[];
  Init: boolean;
  Sysctls: Record<string, string>;
  Runtime: string;
  Isolation: string;
  Annotations: Record<string, string>;
  LogConfig: { Type: string; Config: Record<string, string> };
}

export interface EndpointSettings {
  Aliases?: string[];
  Links?: string[];
  DriverOpts?: Record<string, string>;
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] };
  MacAddress?: string;
}

export interface NetworkingSettings {
  EndpointsConfig: Record<string, EndpointSettings>;
}

/** A host folder (or file) that the options mount into the container. */
export interface BindMount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
  /** The option that asked for it, as written, for messages: `-v /srv/data:/data`. */
  option: string;
}

export interface TranslatedOptions {
  config: Partial<ContainerCreateConfig>;
  hostConfig: Partial<HostConfigSettings>;
  networkingConfig?: NetworkingSettings;
  /** `--platform`, sent as the create request's `platform` query parameter. */
  platform?: string;
  /** Things the user should know, e.g. that `--entrypoint` is ignored. */
  warnings: string[];
  /** Every host path mounted: `-v`/`--mount` binds, and local volumes that bind a host device. */
  bindMounts: BindMount[];
}

export interface OptionsContext {
  /** The step's temp folder: `--env-file`, `--label-file` and seccomp profiles must be inside it. */
  workFolder: string;
}
