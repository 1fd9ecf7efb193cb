/**
 * Whether the Docker engine sees the agent's home at the agent's own path. Step containers are
 * created by the engine, which bind-mounts `<home>/Work/…` by its path on the engine's host. An
 * agent in a container (or talking to another machine's engine) whose home is mounted at another
 * path would hand every step an empty folder; this finds out at start instead, with the fix.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CuttleError } from '../protocol/errors.js';
import type { DockerClient } from './docker-client.js';

/** The task label of the check's container, so a leftover is recognisable (and swept). */
export const HOME_CHECK_TASK = 'home-check';

/** The check's container is created, read through the engine's archive API, never started. */
const NEVER_STARTED = ['/cuttle-home-check-never-started'];

export interface HomeCheckOptions {
  /**
   * An image present on the engine to create the check's container from. Nothing in it runs, so
   * any image does (no shell needed); by default the first image the engine lists, which for an
   * agent in a container includes the agent's own.
   */
  image?: string;
}

export type HomeCheckResult =
  | { checked: true; image: string }
  /** The engine has no image at all to create the check's container from. */
  | { checked: false; reason: string };

/**
 * Writes a random marker into `home`, creates (never starts) a container labelled with the agent
 * that bind-mounts `home` at the same path, and reads the marker back through the engine. Throws a
 * CuttleError (`workspace-error`) with the `docker run -v` fix when the engine does not see it.
 * Removes the container and the marker in every case. Engine failures propagate as they are.
 *
 * When the host path did not exist, the engine creates it as an empty folder (as it would for the
 * first step): a mismatch may leave that empty folder on the engine's host.
 */
export async function checkHomeVisibleToEngine(
  docker: DockerClient,
  home: string,
  agentId: string,
  options: HomeCheckOptions = {},
): Promise<HomeCheckResult> {
  const image = options.image ?? (await docker.listImages({}))[0]?.id;
  if (image === undefined) {
    return {
      checked: false,
      reason: `the Docker engine at ${docker.endpoint} has no image to create a check container from`,
    };
  }
  const nonce = randomBytes(16).toString('hex');
  const marker = join(home, `.cuttle-home-check-${nonce.slice(0, 12)}`);
  try {
    await writeFile(marker, nonce, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw new CuttleError(
      'workspace-error',
      `cannot write ${marker} to check the agent's home: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  let containerId: string | undefined;
  let seen: boolean;
  try {
    containerId = await docker.createStepContainer({
      image,
      agentId,
      taskId: HOME_CHECK_TASK,
      workFolder: home,
      command: NEVER_STARTED,
    });
    const found = await docker.readPath(containerId, marker, nonce.length + 1);
    seen = found !== undefined && 'content' in found && found.content.toString('utf8') === nonce;
  } finally {
    // A container left behind carries the agent's label: the agent's own sweep removes it.
    if (containerId !== undefined) await docker.remove(containerId).catch(() => undefined);
    await rm(marker, { force: true }).catch(() => undefined);
  }
  if (!seen) throw homeMismatch(home);
  return { checked: true, image };
}

function homeMismatch(home: string): CuttleError {
  const user =
    process.getuid === undefined || process.getgid === undefined
      ? ''
      : `, uid ${process.getuid()}, gid ${process.getgid()}`;
  return new CuttleError(
    'workspace-error',
    `the agent's home ${home} is not at the same path on the Docker engine's host: the engine, ` +
      `which creates the step containers, mounts ${home} from its host and does not find the ` +
      `agent's files there, so every step would get an empty folder. Mount the home at the same ` +
      `path inside and outside the agent's container: docker run -v ${home}:${home} ` +
      `-e CUTTLE_HOME=${home} … (the host folder owned by the agent's user${user}; see ` +
      'docs/operations.md, "In a container, for dynamic worker pools")',
  );
}

/**
 * Whether this process runs in a container: Docker's `/.dockerenv`, Podman's `/run/.containerenv`,
 * or PID 1's cgroup naming a container runtime (cgroup v1). `root` is for tests.
 */
export function runningInContainer(root = '/'): boolean {
  if (existsSync(join(root, '.dockerenv')) || existsSync(join(root, 'run', '.containerenv'))) {
    return true;
  }
  try {
    const cgroup = readFileSync(join(root, 'proc', '1', 'cgroup'), 'utf8');
    return /\b(docker|containerd|kubepods|libpod|lxc)\b/.test(cgroup);
  } catch {
    return false;
  }
}
