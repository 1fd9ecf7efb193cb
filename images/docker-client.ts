import { Readable } from 'node:stream';
import Docker from 'dockerode';
import semver from 'semver';
import type {
  ContainerDetails,
  ContainerSummary,
  EngineInfo,
  ImageSummary,
} from './docker-types.js';
import {
  DockerUnavailableError,
  ImageBuildFailedError,
  ImageNotFoundError,
  ImagePullFailedError,
  engineMessageOf,
  isUnreachable,
  statusCodeOf,
  toDockerError,
  unavailable,
} from './docker-errors.js';
import { readEngineMessages, LineSplitter } from './json-message-stream.js';
import { AGENT_LABEL, TASK_LABEL, labelFilter } from './labels.js';
import { mapContainerInfo, mapContainerInspect, mapImageInspect } from './map-inspect-result.js';
import { type StepContainerSpec, toCreateOptions } from './step-container-spec.js';

/** The first Engine API version with `image` mounts (Docker 28). */
const IMAGE_MOUNTS_API = '1.48.0';

/** Whether an engine speaking this API version (e.g. `1.41`, not semver) supports image mounts. */
export function supportsImageMounts(apiVersion: string): boolean {
  const api = semver.coerce(apiVersion);
  return api !== null && semver.gte(api, IMAGE_MOUNTS_API);
}

export interface ConnectOptions {
  /** A unix socket to use instead of DOCKER_HOST or the default socket (tests, odd setups). */
  socketPath?: string;
}

export interface BuildImageOptions {
  tag: string;
  /** A tar archive holding the Dockerfile at its root. */
  context: NodeJS.ReadableStream | Buffer;
  labels?: Record<string, string>;
  onOutput?: (line: string) => void;
}

/** The only owner of dockerode in cuttle: every engine call goes through here. */
export class DockerClient {
  readonly #docker: Docker;
  /** Where the engine is expected, for error messages. */
  readonly endpoint: string;

  private constructor(docker: Docker, endpoint: string) {
    this.#docker = docker;
    this.endpoint = endpoint;
  }

  /**
   * Uses DOCKER_HOST (unix://, tcp://, ssh://, with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) when set,
   * else the default socket; dockerode's modem reads those variables itself. Does not dial yet:
   * call engineInfo() to find out whether the engine answers.
   */
  static connect(options: ConnectOptions = {}): DockerClient {
    const endpoint =
      options.socketPath !== undefined
        ? `unix://${options.socketPath}`
        : process.env.DOCKER_HOST || 'the default socket (unix:///var/run/docker.sock)';
    try {
      const docker = new Docker(
        options.socketPath === undefined ? undefined : { socketPath: options.socketPath },
      );
      return new DockerClient(docker, endpoint);
    } catch (error) {
      // dockerode throws while parsing a malformed DOCKER_HOST.
      throw new DockerUnavailableError(
        `Cannot use DOCKER_HOST=${endpoint}: ${engineMessageOf(error)}. Fix or unset DOCKER_HOST.`,
        { cause: error },
      );
    }
  }

  async engineInfo(): Promise<EngineInfo> {
    try {
      const version = await this.#docker.version();
      return {
        version: version.Version,
        apiVersion: version.ApiVersion,
        os: version.Os,
        arch: version.Arch,
        imageMounts: supportsImageMounts(version.ApiVersion),
      };
    } catch (error) {
      // Anything at all going wrong here means there is no usable engine.
      if (isUnreachable(error)) throw unavailable(this.endpoint, error);
      throw new DockerUnavailableError(
        `The Docker engine at ${this.endpoint} did not answer its version: ${engineMessageOf(error)}.`,
        { cause: error },
      );
    }
  }

  /** The image's config when it is present locally, else undefined. */
  async imageExists(ref: string): Promise<ImageSummary | undefined> {
    try {
      return mapImageInspect(await this.#docker.getImage(ref).inspect());
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw toDockerError(this.endpoint, `inspect image ${ref}`, error);
    }
  }

  /** Pulls a public image (no credentials yet); progress lines go to onProgress. */
  async pullImage(ref: string, onProgress?: (line: string) => void): Promise<void> {
    const notFound = (message: string, cause: unknown): ImageNotFoundError =>
      new ImageNotFoundError(
        ref,
        `Image ${ref} was not found in its registry (${message}); check the name and tag.`,
        { cause },
      );
    const failed = (message: string, cause: unknown): ImagePullFailedError =>
      new ImagePullFailedError(
        ref,
        `Pulling image ${ref} failed: ${message}. Check the worker's network access to the registry.`,
        { cause },
      );
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.pull(ref);
    } catch (error) {
      if (isUnreachable(error)) throw unavailable(this.endpoint, error);
      const message = engineMessageOf(error);
      throw statusCodeOf(error) === 404 || looksNotFound(message)
        ? notFound(message, error)
        : failed(message, error);
    }
    let streamError: string | undefined;
    try {
      await readEngineMessages(stream, (message) => {
        if (message.error !== undefined)
          streamError = message.errorDetail?.message ?? message.error;
        else if (message.status !== undefined && onProgress !== undefined) {
          const prefix = message.id === undefined ? '' : `${message.id}: `;
          onProgress(`${prefix}${message.status}${message.progress ? ` ${message.progress}` : ''}`);
        }
      });
    } catch (error) {
      throw failed(engineMessageOf(error), error);
    }
    if (streamError !== undefined) {
      throw looksNotFound(streamError)
        ? notFound(streamError, undefined)
        : failed(streamError, undefined);
    }
  }

  /** Builds with the classic builder, streaming its output line by line. */
  async buildImage(options: BuildImageOptions): Promise<void> {
    const { tag, onOutput } = options;
    const failed = (message: string, cause: unknown): ImageBuildFailedError =>
      new ImageBuildFailedError(tag, `Building image ${tag} failed: ${message}`, { cause });
    const context = Buffer.isBuffer(options.context)
      ? Readable.from([options.context])
      : options.context;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.buildImage(context, {
        t: tag,
        labels: options.labels ?? {},
        // Classic builder: BuildKit needs a session and would ignore our streamed output format.
        version: '1',
        // Leave no intermediate containers behind, even when a step fails.
        rm: true,
        forcerm: true,
      });
    } catch (error) {
      if (isUnreachable(error)) throw unavailable(this.endpoint, error);
      throw failed(engineMessageOf(error), error);
    }
    const lines = new LineSplitter((line) => onOutput?.(line));
    let buildError: string | undefined;
    try {
      await readEngineMessages(stream, (message) => {
        if (message.stream !== undefined) lines.push(message.stream);
        if (message.error !== undefined) buildError = message.errorDetail?.message ?? message.error;
      });
    } catch (error) {
      throw failed(engineMessageOf(error), error);
    } finally {
      lines.end();
    }
    if (buildError !== undefined) throw failed(buildError.trim(), undefined);
  }

  /** Removes an image by reference (not forced: an image in use stays). Already gone is fine. */
  async removeImage(ref: string): Promise<void> {
    try {
      await this.#docker.getImage(ref).remove();
    } catch (error) {
      if (statusCodeOf(error) === 404) return;
      throw toDockerError(this.endpoint, `remove image ${ref}`, error);
    }
  }

  /** Creates (does not start) a step's container; returns its id. */
  async createStepContainer(spec: StepContainerSpec): Promise<string> {
    try {
      const container = await this.#docker.createContainer(toCreateOptions(spec));
      return container.id;
    } catch (error) {
      if (statusCodeOf(error) === 404) {
        throw new ImageNotFoundError(
          spec.image,
          `Image ${spec.image} is not present on this worker; pull or build it first.`,
          { cause: error },
        );
      }
      throw toDockerError(this.endpoint, `create a container from ${spec.image}`, error);
    }
  }

  async start(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).start();
    } catch (error) {
      // 304: already started.
      if (statusCodeOf(error) === 304) return;
      throw toDockerError(this.endpoint, `start container ${id}`, error);
    }
  }

  /** Resolves when the container is not running (at once if it already exited); call after start. */
  async wait(id: string): Promise<{ exitCode: number }> {
    let result: unknown;
    try {
      result = await this.#docker.getContainer(id).wait({ condition: 'not-running' });
    } catch (error) {
      throw toDockerError(this.endpoint, `wait for container ${id}`, error);
    }
    const exitCode: unknown =
      typeof result === 'object' && result !== null ? Reflect.get(result, 'StatusCode') : undefined;
    if (typeof exitCode !== 'number') {
      throw toDockerError(this.endpoint, `wait for container ${id}`, new Error('no StatusCode'));
    }
    return { exitCode };
  }

  /** SIGTERM, then SIGKILL after timeoutSeconds. Already stopped or gone is fine. */
  async stop(id: string, options: { timeoutSeconds: number }): Promise<void> {
    try {
      await this.#docker.getContainer(id).stop({ t: options.timeoutSeconds });
    } catch (error) {
      if (isGone(error)) return;
      throw toDockerError(this.endpoint, `stop container ${id}`, error);
    }
  }

  /** Sends a signal. A container that is gone or no longer running is fine (409 from the engine). */
  async kill(id: string, signal: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).kill({ signal });
    } catch (error) {
      if (isGone(error) || statusCodeOf(error) === 409) return;
      throw toDockerError(this.endpoint, `send ${signal} to container ${id}`, error);
    }
  }

  /** Force-removes a container and its anonymous volumes. Already gone is fine. */
  async remove(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      if (isGone(error)) return;
      // 409 "removal already in progress": someone else is removing it.
      if (statusCodeOf(error) === 409 && /already in progress/i.test(engineMessageOf(error)))
        return;
      throw toDockerError(this.endpoint, `remove container ${id}`, error);
    }
  }

  /** Alias of remove(), named for the sweep of an agent's leftovers. */
  async removeContainer(id: string): Promise<void> {
    await this.remove(id);
  }

  /** Containers with this agent's label (and task's, if given), stopped ones included. */
  async listContainers(filter: { agentId: string; taskId?: string }): Promise<ContainerSummary[]> {
    const labels: Record<string, string> = { [AGENT_LABEL]: filter.agentId };
    if (filter.taskId !== undefined) labels[TASK_LABEL] = filter.taskId;
    try {
      const infos = await this.#docker.listContainers({
        all: true,
        filters: { label: labelFilter(labels) },
      });
      return infos.map(mapContainerInfo);
    } catch (error) {
      throw toDockerError(this.endpoint, 'list containers', error);
    }
  }

  /** The container's state, or undefined when it no longer exists. */
  async inspectContainer(id: string): Promise<ContainerDetails | undefined> {
    try {
      return mapContainerInspect(await this.#docker.getContainer(id).inspect());
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw toDockerError(this.endpoint, `inspect container ${id}`, error);
    }
  }
}

/** 304 (already stopped) and 404 (no such container) mean the caller's goal is already reached. */
function isGone(error: unknown): boolean {
  const status = statusCodeOf(error);
  return status === 304 || status === 404;
}

// Registries word "no such image" differently; these cover Docker Hub, distribution and GHCR.
function looksNotFound(message: string): boolean {
  return /not found|manifest unknown|pull access denied|repository does not exist/i.test(message);
}
