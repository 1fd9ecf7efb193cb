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
