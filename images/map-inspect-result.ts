import type Docker from 'dockerode';
import type {
  ContainerDetails,
  ContainerSummary,
  ImageListEntry,
  ImageSummary,
} from './docker-types.js';
import { AGENT_LABEL, TASK_LABEL } from './labels.js';

// The engine sends null (not []) for an unset Entrypoint/Cmd/Env, whatever dockerode's types say.
function stringList(value: unknown): string[] | null {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return null;
  return value.filter((item): item is string => typeof item === 'string');
}

function engineTime(value: string | undefined): string | undefined {
  // Go's zero time means "never".
  return value === undefined || value.startsWith('0001-01-01') ? undefined : value;
}

export function mapImageInspect(info: Docker.ImageInspectInfo): ImageSummary {
  const config: Partial<Docker.ImageInspectInfo['Config']> = info.Config ?? {};
  return {
    id: info.Id,
    entrypoint: stringList(config.Entrypoint),
    cmd: stringList(config.Cmd),
    env: stringList(config.Env) ?? [],
    workingDir: config.WorkingDir ?? '',
    user: config.User ?? '',
    size: info.Size,
    repoDigests: info.RepoDigests ?? [],
    repoTags: info.RepoTags ?? [],
    labels: config.Labels ?? {},
    created: info.Created,
    architecture: info.Architecture,
  };
}

export function mapImageInfo(info: Docker.ImageInfo): ImageListEntry {
  return {
    id: info.Id,
    // The engine lists an untagged image with null or ['<none>:<none>'].
    repoTags: (info.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'),
    size: info.Size,
    createdMs: info.Created * 1000,
    labels: info.Labels ?? {},
  };
}

export function mapContainerInfo(info: Docker.ContainerInfo): ContainerSummary {
  const labels = info.Labels ?? {};
  return {
    id: info.Id,
    agentId: labels[AGENT_LABEL] ?? '',
    taskId: labels[TASK_LABEL] ?? '',
    state: info.State,
    running: info.State === 'running',
  };
}

export function mapContainerInspect(info: Docker.ContainerInspectInfo): ContainerDetails {
  const labels = info.Config.Labels ?? {};
  const exited = engineTime(info.State.FinishedAt) !== undefined;
  return {
    id: info.Id,
    agentId: labels[AGENT_LABEL] ?? '',
    taskId: labels[TASK_LABEL] ?? '',
    state: info.State.Status,
    running: info.State.Running,
    exitCode: exited && !info.State.Running ? info.State.ExitCode : null,
    oomKilled: info.State.OOMKilled,
    startedAt: engineTime(info.State.StartedAt),
    finishedAt: engineTime(info.State.FinishedAt),
  };
}
