import { mergeIntoCreateOptions, type TranslatedOptions } from './container-options/index.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import semver from 'semver';
import { CuttleError } from '../protocol/errors.js';
import { extract } from 'tar-stream';
import type {
  ContainerDetails,
  ContainerSummary,
  EngineInfo,
  ImageListEntry,
  ImageSummary,
  PathStat,
  RegistryAuth,
} from './docker-types.js';
import {
  DockerOperationError,
  DockerUnavailableError,
  ImageBuildFailedError,
  ImageNotFoundError,
  ImagePullFailedError,
  engineMessageOf,
  isNoSuchImage,
  isUnreachable,
  statusCodeOf,
  toDockerError,
  unavailable,
} from './docker-errors.js';
import { readEngineMessages, LineSplitter, type EngineMessage } from './json-message-stream.js';
import { AGENT_LABEL, TASK_LABEL, labelFilter } from './labels.js';
import {
  mapContainerInfo,
  mapContainerInspect,
  mapImageInfo,
  mapImageInspect,
} from './map-inspect-result.js';
import { Docker } from './dockerode-loader.js';
import { classifyPullFailure, pullFailureAdvice } from './pull-failure.js';
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
  /** A tar archive holding the Dockerfile at its root. Omit when building from `remote`. */
  context?: NodeJS.ReadableStream | Buffer;
  /** A remote context the engine fetches itself, e.g. a Git URL `url#commit:folder`. */
  remote?: string;
  /** The Dockerfile's path inside the context (default `Dockerfile`). */
  dockerfile?: string;
  labels?: Record<string, string>;
  onOutput?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PullOptions {
  /** Sent to the engine in X-Registry-Auth; never logged. */
  auth?: RegistryAuth;
  /** Every message of the engine's progress stream (layers, digest, status). */
  onMessage?: (message: EngineMessage) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  /** `sha256:...` of the manifest, when the registry told it. */
  digest: string | undefined;
  /** The engine already had this exact image ("Image is up to date"). */
  upToDate: boolean;
}

/** The answers of POST /containers/create, as the modem wants them: true for success. */
const CREATE_STATUS_CODES = {
  200: true,
  201: true,
  400: 'bad parameter',
  404: 'not found',
  409: 'conflict',
  500: 'server error',
};

/** Where an image's files are read from without running it: a created, never started container. */
const INERT_COMMAND = ['/cuttle-inspect-only-never-started'];

/** The only owner of dockerode in cuttle: every engine call goes through here. */
export class DockerClient {
  readonly #docker: Dockerode;
  /** Where the engine is expected, for error messages. */
  readonly endpoint: string;
  /**
   * The unix sockets this client may dial (both defaults when DOCKER_HOST is unset; none for a
   * tcp:// or ssh:// engine): whoever can reach one controls the engine, so the agent protects
   * them from step bind mounts (OptionsPolicy.protectedHostPaths).
   */
  readonly socketPaths: readonly string[];

  private constructor(docker: Dockerode, endpoint: string, socketPaths: readonly string[]) {
    this.#docker = docker;
    this.endpoint = endpoint;
    this.socketPaths = socketPaths;
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
      return new DockerClient(docker, endpoint, unixSockets(options.socketPath));
    } catch (error) {
      // dockerode throws while parsing a malformed DOCKER_HOST.
      throw new DockerUnavailableError(
        `Cannot use DOCKER_HOST=${endpoint}: ${engineMessageOf(error)}. Fix or unset DOCKER_HOST.`,
        { cause: error },
      );
    }
  }

  /**
   * Whether the engine answers now. Asked before every step, so it is the engine's cheapest call
   * (`/_ping`, well under a millisecond here; `/version` took about 5 ms).
   */
  async isReachable(): Promise<boolean> {
    try {
      await this.#docker.ping();
      return true;
    } catch {
      return false;
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

  /** Pulls a public image; progress lines go to onProgress. */
  async pullImage(ref: string, onProgress?: (line: string) => void): Promise<void> {
    await this.pull(ref, {
      ...(onProgress === undefined
        ? {}
        : {
            onMessage: (message) => {
              if (message.status === undefined) return;
              const prefix = message.id === undefined ? '' : `${message.id}: `;
              onProgress(
                `${prefix}${message.status}${message.progress ? ` ${message.progress}` : ''}`,
              );
            },
          }),
    });
  }

  /**
   * Pulls an image, with credentials when given. A missing image or tag throws
   * ImageNotFoundError; anything else ImagePullFailedError with its reason (`unauthorized`,
   * `unreachable`, `server-error`, `rate-limited`, `other`).
   */
  async pull(ref: string, options: PullOptions = {}): Promise<PullResult> {
    const withCredentials = options.auth !== undefined;
    const fail = (message: string, cause: unknown, status?: number): CuttleError => {
      const kind = classifyPullFailure(message, status);
      if (kind.kind === 'not-found') {
        return new ImageNotFoundError(
          ref,
          `Image ${ref} was not found in its registry (${message}); check the name and tag${withCredentials ? '' : ', and give credentials if the repository is private'}.`,
          { cause },
        );
      }
      return new ImagePullFailedError(
        ref,
        `Pulling image ${ref} failed (${kind.reason}): ${message}; ${pullFailureAdvice(kind.reason, withCredentials)}.`,
        { cause, reason: kind.reason },
      );
    };
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.pull(ref, {
        ...(options.auth === undefined ? {} : { authconfig: { ...options.auth } }),
        ...(options.signal === undefined ? {} : { abortSignal: options.signal }),
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (isUnreachable(error)) throw unavailable(this.endpoint, error);
      throw fail(engineMessageOf(error), error, statusCodeOf(error));
    }
    let streamError: string | undefined;
    let digest: string | undefined;
    let upToDate = false;
    try {
      await readEngineMessages(stream, (message) => {
        if (message.error !== undefined) {
          streamError = message.errorDetail?.message ?? message.error;
          return;
        }
        const status = message.status ?? '';
        const found = /^Digest: (sha256:[0-9a-f]{64})/.exec(status);
        if (found?.[1] !== undefined) digest = found[1];
        if (/^Status: Image is up to date/.test(status)) upToDate = true;
        options.onMessage?.(message);
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      // The engine hung up mid-stream: as transient as a registry that stopped answering.
      throw fail(`the pull stream broke: ${engineMessageOf(error)} (connection reset)`, error);
    }
    if (streamError !== undefined) throw fail(streamError, undefined);
    return { digest, upToDate };
  }

  /** Pushes an image to its registry (tests, and warming a mirror); returns the pushed digest. */
  async pushImage(ref: string, auth?: RegistryAuth): Promise<string | undefined> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker
        .getImage(ref)
        .push(auth === undefined ? {} : { authconfig: { ...auth } });
    } catch (error) {
      throw toDockerError(this.endpoint, `push image ${ref}`, error);
    }
    let pushError: string | undefined;
    let digest: string | undefined;
    await readEngineMessages(stream, (message) => {
      if (message.error !== undefined) pushError = message.errorDetail?.message ?? message.error;
      if (message.aux?.digest !== undefined) digest = message.aux.digest;
    });
    if (pushError !== undefined) {
      throw new DockerOperationError(`Pushing image ${ref} failed: ${pushError}`, undefined);
    }
    return digest;
  }

  /** Adds the tag `repo:tag` to an image. */
  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    try {
      await this.#docker.getImage(ref).tag({ repo, tag });
    } catch (error) {
      throw toDockerError(this.endpoint, `tag image ${ref} as ${repo}:${tag}`, error);
    }
  }

  /** Images carrying every one of these labels. */
  async listImages(labels: Record<string, string>): Promise<ImageListEntry[]> {
    try {
      const infos = await this.#docker.listImages({ filters: { label: labelFilter(labels) } });
      return infos.map(mapImageInfo);
    } catch (error) {
      throw toDockerError(this.endpoint, 'list images', error);
    }
  }

  /**
   * Creates a container that is never started, so an image's files can be read through the archive
   * API without running anything from it. Remove it with remove().
   */
  async createInertContainer(image: string, labels: Record<string, string>): Promise<string> {
    try {
      return await this.#createContainer({
        Image: image,
        Entrypoint: [''],
        Cmd: INERT_COMMAND,
        Labels: labels,
        NetworkDisabled: true,
        HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none', Config: {} } },
      });
    } catch (error) {
      if (isNoSuchImage(error)) {
        throw new ImageNotFoundError(image, `Image ${image} is not present on this worker.`, {
          cause: error,
        });
      }
      throw toDockerError(this.endpoint, `create a container from ${image}`, error);
    }
  }

  /** The path's metadata (links not followed), or undefined when it does not exist. */
  async statPath(containerId: string, path: string): Promise<PathStat | undefined> {
    let response: unknown;
    try {
      response = await this.#docker.getContainer(containerId).infoArchive({ path });
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw toDockerError(this.endpoint, `stat ${path} in container ${containerId}`, error);
    }
    const headers: unknown =
      typeof response === 'object' && response !== null
        ? Reflect.get(response, 'headers')
        : undefined;
    if (response instanceof Readable) response.resume();
    const header: unknown =
      typeof headers === 'object' && headers !== null
        ? Reflect.get(headers, 'x-docker-container-path-stat')
        : undefined;
    if (typeof header !== 'string') return undefined;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null) return undefined;
      const field = (key: string): unknown => Reflect.get(parsed, key);
      const name = field('name');
      const size = field('size');
      const mode = field('mode');
      const linkTarget = field('linkTarget');
      return {
        name: typeof name === 'string' ? name : '',
        size: typeof size === 'number' ? size : 0,
        mode: typeof mode === 'number' ? mode : 0,
        linkTarget: typeof linkTarget === 'string' ? linkTarget : '',
      };
    } catch {
      return undefined;
    }
  }

  /**
   * The content of a regular file (at most maxBytes), or the target of a symbolic link, or
   * undefined when the path does not exist.
   */
  async readPath(
    containerId: string,
    path: string,
    maxBytes: number,
  ): Promise<{ content: Buffer } | { linkTarget: string } | undefined> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.getContainer(containerId).getArchive({ path });
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw toDockerError(this.endpoint, `read ${path} in container ${containerId}`, error);
    }
    const archive = extract();
    let result: { content: Buffer } | { linkTarget: string } | undefined;
    archive.on('entry', (header, body, next) => {
      if (result === undefined && header.type === 'symlink') {
        result = { linkTarget: header.linkname ?? '' };
      }
      const chunks: Buffer[] = [];
      let length = 0;
      body.on('data', (chunk: unknown) => {
        if (!Buffer.isBuffer(chunk)) return;
        if (length < maxBytes) chunks.push(chunk.subarray(0, maxBytes - length));
        length += chunk.length;
      });
      body.on('end', () => {
        if (result === undefined && header.type === 'file') {
          result = { content: Buffer.concat(chunks) };
        }
        next();
      });
      body.resume();
    });
    await new Promise<void>((resolve, reject) => {
      archive.on('finish', resolve);
      archive.on('error', reject);
      stream.on('error', reject);
      stream.pipe(archive);
    });
    return result;
  }

  /** Builds with the classic builder, streaming its output line by line. */
  async buildImage(options: BuildImageOptions): Promise<{ imageId: string | undefined }> {
    const { tag, onOutput } = options;
    const failed = (message: string, cause: unknown): ImageBuildFailedError =>
      new ImageBuildFailedError(tag, `Building image ${tag} failed: ${message}`, { cause });
    // A remote build still needs a request body: dockerode sends its options as JSON without one.
    const body = options.context ?? Buffer.alloc(0);
    const context = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.buildImage(context, {
        t: tag,
        labels: options.labels ?? {},
        ...(options.remote === undefined ? {} : { remote: options.remote }),
        ...(options.dockerfile === undefined ? {} : { dockerfile: options.dockerfile }),
        ...(options.signal === undefined ? {} : { abortSignal: options.signal }),
        // Classic builder: BuildKit needs a session and would ignore our streamed output format.
        version: '1',
        // Leave no intermediate containers behind, even when a step fails.
        rm: true,
        forcerm: true,
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (isUnreachable(error)) throw unavailable(this.endpoint, error);
      throw failed(engineMessageOf(error), error);
    }
    const lines = new LineSplitter((line) => onOutput?.(line));
    let buildError: string | undefined;
    let imageId: string | undefined;
    try {
      await readEngineMessages(stream, (message) => {
        if (message.stream !== undefined) lines.push(message.stream);
        if (message.aux?.id !== undefined) imageId = message.aux.id;
        if (message.error !== undefined) buildError = message.errorDetail?.message ?? message.error;
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      throw failed(engineMessageOf(error), error);
    } finally {
      lines.end();
    }
    if (buildError !== undefined) throw failed(buildError.trim(), undefined);
    return { imageId };
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
  /**
   * Creates a step container; `options` are the step's translated container options, merged
   * under the step's own settings (which always win).
   */
  async createStepContainer(spec: StepContainerSpec, options?: TranslatedOptions): Promise<string> {
    const base = toCreateOptions(spec);
    const create = options === undefined ? base : mergeIntoCreateOptions(base, options);
    try {
      return await this.#createContainer(create);
    } catch (error) {
      // The engine also answers 404 for a missing network, --link target or volume plugin.
      if (isNoSuchImage(error)) {
        throw new ImageNotFoundError(
          spec.image,
          `Image ${spec.image} is not present on this worker; pull or build it first.`,
          { cause: error },
        );
      }
      throw toDockerError(this.endpoint, `create a container from ${spec.image}`, error);
    }
  }

  /**
   * POST /containers/create with the options only in the body. dockerode's createContainer also
   * serialises the whole body into the query string, which put variables (secrets), env files and
   * seccomp profiles in the request line that dockerd logs, and fails past the engine's URL limit.
   * `platform` and `name` are the only query parameters the endpoint reads.
   */
  async #createContainer(options: Dockerode.ContainerCreateOptions): Promise<string> {
    const { platform, name, ...body } = options;
    const query: Record<string, string> = {};
    if (platform !== undefined) query.platform = platform;
    if (name !== undefined) query.name = name;
    const data = await new Promise<unknown>((resolve, reject) => {
      this.#docker.modem.dial(
        {
          // The modem adds a query string only to a path ending in `?`.
          path: Object.keys(query).length > 0 ? '/containers/create?' : '/containers/create',
          method: 'POST',
          options: { _query: query, _body: body },
          statusCodes: CREATE_STATUS_CODES,
        },
        (error, result) => (error === null ? resolve(result) : reject(error)),
      );
    });
    const id: unknown =
      typeof data === 'object' && data !== null ? Reflect.get(data, 'Id') : undefined;
    if (typeof id !== 'string') throw new Error('the engine answered without a container id');
    return id;
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

/** The unix sockets dockerode's modem may dial, as it reads DOCKER_HOST. */
function unixSockets(socketPath: string | undefined): string[] {
  if (socketPath !== undefined) return [socketPath];
  const host = process.env.DOCKER_HOST ?? '';
  const path = host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
  if (host !== '' && path === undefined) return [];
  if (path !== undefined && path !== '') return [path];
  // The modem's default: Docker Desktop's per-user socket when it exists, else the system one.
  return ['/var/run/docker.sock', join(homedir(), '.docker', 'run', 'docker.sock')];
}

/** What a cancelled engine call throws: the signal's reason when it is an Error. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new CuttleError('internal', 'the operation was cancelled');
}

/** 304 (already stopped) and 404 (no such container) mean the caller's goal is already reached. */
function isGone(error: unknown): boolean {
  const status = statusCodeOf(error);
  return status === 304 || status === 404;
}
