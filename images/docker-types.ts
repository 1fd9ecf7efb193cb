// cuttle's own view of engine objects: small, and free of dockerode's types.

export interface EngineInfo {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
  /** The engine supports `image` mounts (API 1.48, Docker 28), so tool images can be mounted. */
  imageMounts: boolean;
}

export interface ImageSummary {
  id: string;
  /** null when the image defines no ENTRYPOINT (the agent warns when it ignores one). */
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[];
  workingDir: string;
  user: string;
  /** Bytes on disk (all layers). */
  size: number;
  /** `name@sha256:...` for each registry it was pulled from or pushed to. */
  repoDigests: string[];
  repoTags: string[];
  labels: Record<string, string>;
  /** ISO timestamp of the image's creation. */
  created: string;
  architecture: string;
}

/** One row of an image listing. */
export interface ImageListEntry {
  id: string;
  repoTags: string[];
  size: number;
  /** Creation time, milliseconds since the epoch. */
  createdMs: number;
  labels: Record<string, string>;
}

/** Credentials for one registry, sent to the engine in X-Registry-Auth (never written anywhere). */
export interface RegistryAuth {
  username: string;
  password: string;
  /** e.g. `registry.example.com` or `https://index.docker.io/v1/`. */
  serveraddress: string;
}

/** What the engine says about a path inside a container's filesystem. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  /** The target when the path is a symbolic link, else ''. */
  linkTarget: string;
}

export interface ContainerSummary {
  id: string;
  agentId: string;
  taskId: string;
  /** The engine's state word: created, running, exited, dead, ... */
  state: string;
  running: boolean;
}

export interface ContainerDetails extends ContainerSummary {
  /** null until the container has exited at least once. */
  exitCode: number | null;
  oomKilled: boolean;
  /** ISO timestamps; undefined when the engine reports its zero time. */
  startedAt: string | undefined;
  finishedAt: string | undefined;
}
