import { createHash } from 'node:crypto';
import { Backoff } from '../protocol/backoff.js';
import { CuttleError } from '../protocol/errors.js';
import { tarContext } from './build-context.js';
import type { DockerClient } from './docker-client.js';
import {
  ImageBuildFailedError,
  ImageNotFoundError,
  ImagePullFailedError,
} from './docker-errors.js';
import type { ImageSummary, RegistryAuth } from './docker-types.js';
import { Flight, Subscriber } from './flight.js';
import {
  gitUrlSecrets,
  normalizeGitSource,
  maskSecrets,
  redactGitUrl,
  remoteContext,
  resolveGitCommit,
} from './git-source.js';
import {
  checkImagePolicy,
  imageRefForms,
  type ImagePolicy,
  type PullPolicy,
} from './image-policy.js';
import {
  AGENT_LABEL,
  BUILD_DOCKERFILE_SHA_LABEL,
  BUILD_GIT_COMMIT_LABEL,
  BUILD_GIT_CONTEXT_LABEL,
  BUILD_GIT_DOCKERFILE_LABEL,
  BUILD_GIT_REF_LABEL,
  BUILD_GIT_URL_LABEL,
  BUILD_SOURCE_LABEL,
  INSPECT_LABEL,
} from './labels.js';
import { checkLibc, inspectImageLibc, type Libc, type LibcReport } from './image-libc.js';
import { PullProgress, Throttle } from './pull-progress.js';

/** A task's `container` (PROTOCOL.md section 3): exactly one of image, dockerfile, git. */
export interface ImageRequest {
  image?: string;
  feed?: { registry?: string; username?: string; password?: string };
  pullPolicy: PullPolicy;
  dockerfile?: string;
  git?: { url: string; ref?: string; dockerfile: string; context: string };
}

/** How the resolver reports to the task: each call becomes an event of the task. */
export interface ResolveHooks {
  state(state: 'pulling' | 'building'): Promise<void>;
  progress(activity: 'pull' | 'build', message: string, percent?: number): Promise<void>;
  log(level: 'verbose' | 'info' | 'warning', lines: string[]): Promise<void>;
}

export interface ResolvedImage {
  /** What to create the step container from. */
  ref: string;
  /** Nothing was downloaded or built: the image on the worker was used as it was. */
  cached: boolean;
  /** The manifest digest, when the image came from (or is known to) a registry. */
  digest?: string;
  /** The image as the engine described it, when resolving it already asked (a cached image). */
  summary?: ImageSummary;
}

export interface RetentionLimits {
  /** Keep at most this many built images (least recently used go first). */
  maxCount?: number;
  /** Keep at most this many bytes of built images. */
  maxBytes?: number;
}

export interface ImageResolverOptions {
  /** Attempts for a transient pull failure (unreachable registry, 5xx), first one included. */
  pullAttempts?: number;
  /** Backoff between attempts: full jitter under a ceiling doubling from this. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** At most one progress event per this many ms per pull or build. */
  progressIntervalMs?: number;
  /** Build output lines are sent in batches at most this often. */
  logBatchMs?: number;
  retention?: RetentionLimits;
}

export const DEFAULT_PULL_ATTEMPTS = 3;
export const DEFAULT_RETRY_INITIAL_MS = 500;
export const DEFAULT_RETRY_MAX_MS = 4_000;
export const DEFAULT_PROGRESS_INTERVAL_MS = 250;
export const DEFAULT_LOG_BATCH_MS = 100;
/** Lines of the failing build step kept in the error message. */
const FAILED_STEP_LINES = 20;

export type PrepullResult =
  | { ref: string; ok: true; cached: boolean; digest?: string }
  | { ref: string; ok: false; error: CuttleError };

interface PullOutcome {
  digest: string | undefined;
  upToDate: boolean;
  size: number | undefined;
}

interface BuildOutcome {
  size: number | undefined;
}

/** One caller of a shared pull or build: its hooks, and the secrets to mask in what it is told. */
class HookSubscriber extends Subscriber {
  constructor(
    readonly hooks: ResolveHooks,
    private readonly secrets: readonly string[],
  ) {
    super();
  }

  progress(activity: 'pull' | 'build', message: string, percent?: number): void {
    const text = maskSecrets(message, this.secrets);
    this.enqueue(() => this.hooks.progress(activity, text, percent));
  }

  log(level: 'verbose' | 'info' | 'warning', lines: string[]): void {
    if (lines.length === 0) return;
    const masked = lines.map((line) => maskSecrets(line, this.secrets));
    this.enqueue(() => this.hooks.log(level, masked));
  }
}

/** The secrets an image request carries, for the task's masker: feed password, Git URL token. */
export function imageRequestSecrets(request: ImageRequest): string[] {
  const secrets: string[] = [];
  if (request.feed?.password !== undefined && request.feed.password !== '')
    secrets.push(request.feed.password);
  if (request.git !== undefined) secrets.push(...gitUrlSecrets(request.git.url));
  return [...new Set(secrets)];
}

/**
 * Turns a task's `container` into an image present on the engine: pulls (with the feed's
 * credentials, the pull policy and the worker's image policy), or builds from an inline Dockerfile
 * or a Git URL, each cached. One instance per agent: concurrent tasks needing the same image share
 * one pull or build.
 */
export class ImageResolver {
  readonly #docker: DockerClient;
  readonly #policy: ImagePolicy;
  readonly #agentId: string;
  readonly #options: Required<Omit<ImageResolverOptions, 'retention'>> & {
    retention: RetentionLimits;
  };
  readonly #pulls = new Map<string, Flight<PullOutcome, HookSubscriber>>();
  readonly #builds = new Map<string, Flight<BuildOutcome, HookSubscriber>>();
  /** Built image tag -> last time a task used it (ms), for retention. */
  readonly #lastUsed = new Map<string, number>();
  /** Image id -> its C library, which cannot change. */
  readonly #libc = new Map<string, LibcReport>();

  constructor(
    docker: DockerClient,
    policy: ImagePolicy,
    labels: { agentId: string },
    options: ImageResolverOptions = {},
  ) {
    this.#docker = docker;
    this.#policy = policy;
    this.#agentId = labels.agentId;
    this.#options = {
      pullAttempts: options.pullAttempts ?? DEFAULT_PULL_ATTEMPTS,
      retryInitialMs: options.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS,
      retryMaxMs: options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS,
      progressIntervalMs: options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS,
      logBatchMs: options.logBatchMs ?? DEFAULT_LOG_BATCH_MS,
      retention: options.retention ?? {},
    };
  }

  async resolve(
    request: ImageRequest,
    hooks: ResolveHooks,
    signal?: AbortSignal,
  ): Promise<ResolvedImage> {
    const sources = [request.image, request.dockerfile, request.git].filter(
      (source) => source !== undefined,
    );
    if (sources.length !== 1) {
      throw new CuttleError('internal', 'container: give exactly one of image, dockerfile, git');
    }
    if (request.image !== undefined)
      return this.#resolvePull(request, request.image, hooks, signal);
    if (request.dockerfile !== undefined)
      return this.#resolveInline(request.dockerfile, hooks, signal);
    if (request.git !== undefined) return this.#resolveGit(request.git, hooks, signal);
    throw new CuttleError('internal', 'container: give exactly one of image, dockerfile, git');
  }

  /**
   * Fails with image-incompatible when the image's C library cannot run the tool (PROTOCOL.md
   * section 7). The finding is remembered per image id, so a warm worker looks only once.
   */
  async checkToolLibc(
    ref: string,
    tool: { name: string; version?: string; libc?: Libc },
  ): Promise<LibcReport | undefined> {
    if (tool.libc === undefined) return undefined;
    const image = await this.#docker.imageExists(ref);
    const key = image?.id ?? ref;
    let report = this.#libc.get(key);
    if (report === undefined) {
      report = await inspectImageLibc(this.#docker, ref, {
        [AGENT_LABEL]: this.#agentId,
        [INSPECT_LABEL]: '1',
      });
      if (image !== undefined) this.#libc.set(key, report);
    }
    checkLibc(
      tool.libc,
      report,
      ref,
      `the tool ${tool.name}${tool.version === undefined ? '' : ` ${tool.version}`}`,
    );
    return report;
  }

  /**
   * Pulls each image (policy `if-not-present` by default), one after the other, so a worker is warm
   * before its first task; failures are returned, not thrown. An entry may carry a feed.
   */
  async prepull(
    refs: readonly (string | { image: string; feed?: ImageRequest['feed'] })[],
    pullPolicy: PullPolicy = 'if-not-present',
    hooks: ResolveHooks = SILENT_HOOKS,
  ): Promise<PrepullResult[]> {
    const results: PrepullResult[] = [];
    for (const entry of refs) {
      const request: ImageRequest =
        typeof entry === 'string' ? { image: entry, pullPolicy } : { ...entry, pullPolicy };
      const ref = request.image ?? '';
      try {
        const resolved = await this.resolve(request, hooks);
        results.push({ ok: true, ...resolved, ref });
      } catch (error) {
        results.push({
          ref,
          ok: false,
          error:
            error instanceof CuttleError
              ? error
              : new CuttleError('internal', String(error), { cause: error }),
        });
      }
    }
    return results;
  }

  /**
   * Removes the least recently used images this agent built, beyond the retention limits. Images
   * named in `inUse` (refs or ids of running steps' images) are never removed, nor any the engine
   * refuses to remove because a container uses it. Returns the removed refs.
   */
  async pruneBuiltImages(
    inUse: ReadonlySet<string>,
    limits: RetentionLimits = this.#options.retention,
  ): Promise<string[]> {
    const { maxCount, maxBytes } = limits;
    if (maxCount === undefined && maxBytes === undefined) return [];
    const images = (await this.#docker.listImages({ [AGENT_LABEL]: this.#agentId })).filter(
      (image) => image.labels[BUILD_SOURCE_LABEL] !== undefined,
    );
    const lastUsed = (tags: string[], createdMs: number): number =>
      Math.max(createdMs, ...tags.map((tag) => this.#lastUsed.get(tag) ?? 0));
    images.sort((a, b) => lastUsed(b.repoTags, b.createdMs) - lastUsed(a.repoTags, a.createdMs));
    const removed: string[] = [];
    let keptCount = 0;
    let keptBytes = 0;
    for (const image of images) {
      const used = inUse.has(image.id) || image.repoTags.some((tag) => inUse.has(tag));
      const fits =
        (maxCount === undefined || keptCount < maxCount) &&
        (maxBytes === undefined || keptBytes + image.size <= maxBytes);
      if (used || fits) {
        keptCount += 1;
        keptBytes += image.size;
        continue;
      }
      try {
        for (const tag of image.repoTags) {
          await this.#docker.removeImage(tag);
          this.#lastUsed.delete(tag);
          removed.push(tag);
        }
      } catch {
        // In use by a container (409) or removed meanwhile: keep it, try again next time.
        keptCount += 1;
        keptBytes += image.size;
      }
    }
    return removed;
  }

  // --- pulls ---

  async #resolvePull(
    request: ImageRequest,
    ref: string,
    hooks: ResolveHooks,
    signal: AbortSignal | undefined,
  ): Promise<ResolvedImage> {
    const policy = request.pullPolicy;
    checkImagePolicy(this.#policy, ref, policy);
    const cached = await this.#docker.imageExists(ref);
    if (policy === 'never' || (policy === 'if-not-present' && cached !== undefined)) {
      if (cached === undefined) {
        throw new ImageNotFoundError(
          ref,
          `the image ${ref} is not on this worker and the pull policy is "never"; pull it on the worker first (cuttle prepull ${ref}), or use pullPolicy "if-not-present"`,
        );
      }
      const digest = digestOf(cached, ref);
      await hooks.log('verbose', [
        `using the image ${ref} already on this worker (${describeImage(cached, digest)}; pull policy ${policy})`,
      ]);
      return { ref, cached: true, summary: cached, ...(digest === undefined ? {} : { digest }) };
    }
    const auth = registryAuth(ref, request.feed);
    const secrets = imageRequestSecrets(request);
    const key = `${ref}\0${auth === undefined ? '' : sha256(JSON.stringify(auth))}`;
    const existing = this.#pulls.get(key);
    const flight = existing ?? this.#startPull(key, ref, auth);
    await hooks.state('pulling');
    const subscriber = new HookSubscriber(hooks, secrets);
    subscriber.progress('pull', `pulling ${ref}`, 0);
    subscriber.log('info', [
      existing === undefined
        ? `pulling ${ref} (pull policy ${policy}${auth === undefined ? '' : ', with the feed credentials'})`
        : `waiting for the pull of ${ref} that another task started`,
    ]);
    let outcome: PullOutcome;
    try {
      outcome = await flight.join(subscriber, signal);
    } catch (error) {
      await subscriber.flush().catch(() => undefined);
      if (
        error instanceof ImagePullFailedError &&
        error.transient &&
        cached !== undefined &&
        policy === 'always'
      ) {
        const digest = digestOf(cached, ref);
        await hooks.log('warning', [
          maskSecrets(
            `cannot check the registry for ${ref} (${error.reason}: ${error.message}); running with the image already on this worker (${describeImage(cached, digest)}), which may be out of date`,
            secrets,
          ),
        ]);
        return { ref, cached: true, summary: cached, ...(digest === undefined ? {} : { digest }) };
      }
      throw error;
    }
    subscriber.progress('pull', `pulled ${ref}`, 100);
    subscriber.log('info', [
      `pulled ${ref}: ${[
        outcome.digest === undefined ? undefined : `digest ${outcome.digest}`,
        outcome.size === undefined ? undefined : formatBytes(outcome.size),
        `in ${formatDuration(Date.now() - flight.startedMs)}`,
        outcome.upToDate ? 'already up to date' : undefined,
      ]
        .filter((part) => part !== undefined)
        .join(', ')}`,
    ]);
    await subscriber.flush();
    return {
      ref,
      cached: outcome.upToDate,
      ...(outcome.digest === undefined ? {} : { digest: outcome.digest }),
    };
  }

  #startPull(
    key: string,
    ref: string,
    auth: RegistryAuth | undefined,
  ): Flight<PullOutcome, HookSubscriber> {
    const flight = new Flight<PullOutcome, HookSubscriber>(
      async (self) => {
        const backoff = new Backoff({
          initialMs: this.#options.retryInitialMs,
          maxMs: Math.max(this.#options.retryInitialMs, this.#options.retryMaxMs),
        });
        for (let attempt = 1; ; attempt += 1) {
          const progress = new PullProgress();
          const throttle = new Throttle(this.#options.progressIntervalMs);
          try {
            const result = await this.#docker.pull(ref, {
              ...(auth === undefined ? {} : { auth }),
              signal: self.signal,
              onMessage: (message) => {
                if (!progress.update(message) || !throttle.ready()) return;
                const percent = progress.percent;
                self.broadcast((subscriber) =>
                  subscriber.progress(
                    'pull',
                    `pulling ${ref}: ${formatBytes(progress.downloadedBytes)} of ${progress.layerCount} layer${progress.layerCount === 1 ? '' : 's'}`,
                    percent,
                  ),
                );
              },
            });
            const image = await this.#docker.imageExists(ref);
            return {
              digest: result.digest ?? (image === undefined ? undefined : digestOf(image, ref)),
              upToDate: result.upToDate,
              size: image?.size,
            };
          } catch (error) {
            if (
              !(error instanceof ImagePullFailedError) ||
              !error.transient ||
              attempt >= this.#options.pullAttempts ||
              self.signal.aborted
            ) {
              throw error;
            }
            const delayMs = Math.round(backoff.next());
            self.broadcast((subscriber) =>
              subscriber.log('info', [
                `pulling ${ref} failed (${error.reason}); retrying in ${delayMs} ms (attempt ${attempt + 1} of ${this.#options.pullAttempts})`,
              ]),
            );
            await sleep(delayMs, self.signal);
          }
        }
      },
      () => {
        if (this.#pulls.get(key) === flight) this.#pulls.delete(key);
      },
    );
    this.#pulls.set(key, flight);
    return flight;
  }

  // --- builds ---

  async #resolveInline(
    dockerfile: string,
    hooks: ResolveHooks,
    signal: AbortSignal | undefined,
  ): Promise<ResolvedImage> {
    const hash = sha256(dockerfile);
    return this.#build(
      {
        tag: `cuttle-build:${hash.slice(0, 32)}`,
        what: 'its inline Dockerfile',
        labels: { [BUILD_SOURCE_LABEL]: 'dockerfile', [BUILD_DOCKERFILE_SHA_LABEL]: hash },
        start: async () => ({
          context: await tarContext([{ name: 'Dockerfile', content: dockerfile }]),
        }),
        secrets: [],
      },
      hooks,
      signal,
    );
  }

  async #resolveGit(
    git: NonNullable<ImageRequest['git']>,
    hooks: ResolveHooks,
    signal: AbortSignal | undefined,
  ): Promise<ResolvedImage> {
    const secrets = gitUrlSecrets(git.url);
    // The URL's own fragment (#ref:folder) becomes ref and context; the engine gets one fragment.
    const source = normalizeGitSource(git);
    const url = redactGitUrl(source.url);
    const commit = await resolveGitCommit(source.url, source.ref);
    const context = source.context === '' ? '.' : source.context;
    const dockerfile = source.dockerfile === '' ? 'Dockerfile' : source.dockerfile;
    const hash = sha256(JSON.stringify([url, commit, context, dockerfile]));
    return this.#build(
      {
        tag: `cuttle-build:${hash.slice(0, 32)}`,
        what: `${url}#${commit.slice(0, 12)}${context === '.' ? '' : `:${context}`} (${source.ref ?? 'default branch'})`,
        labels: {
          [BUILD_SOURCE_LABEL]: 'git',
          [BUILD_GIT_URL_LABEL]: url,
          [BUILD_GIT_REF_LABEL]: source.ref ?? 'HEAD',
          [BUILD_GIT_COMMIT_LABEL]: commit,
          [BUILD_GIT_CONTEXT_LABEL]: context,
          [BUILD_GIT_DOCKERFILE_LABEL]: dockerfile,
        },
        start: () =>
          Promise.resolve({
            remote: remoteContext({ ...source, context, dockerfile }, commit),
            dockerfile,
          }),
        secrets,
      },
      hooks,
      signal,
    );
  }

  async #build(
    spec: {
      tag: string;
      what: string;
      labels: Record<string, string>;
      start: () => Promise<{ context?: Buffer; remote?: string; dockerfile?: string }>;
      secrets: string[];
    },
    hooks: ResolveHooks,
    signal: AbortSignal | undefined,
  ): Promise<ResolvedImage> {
    const { tag, what } = spec;
    const existing = await this.#docker.imageExists(tag);
    if (existing !== undefined) {
      this.#lastUsed.set(tag, Date.now());
      await hooks.log('verbose', [
        maskSecrets(`using ${tag}, built earlier from ${what}`, spec.secrets),
      ]);
      return { ref: tag, cached: true, summary: existing };
    }
    const running = this.#builds.get(tag);
    const flight = running ?? this.#startBuild(spec);
    await hooks.state('building');
    const subscriber = new HookSubscriber(hooks, spec.secrets);
    subscriber.progress('build', `building ${tag} from ${what}`, 0);
    subscriber.log('info', [
      running === undefined
        ? `building the step image from ${what} as ${tag}`
        : `waiting for the build of ${tag} from ${what} that another task started`,
    ]);
    let outcome: BuildOutcome;
    try {
      outcome = await flight.join(subscriber, signal);
    } catch (error) {
      await subscriber.flush().catch(() => undefined);
      throw error;
    }
    this.#lastUsed.set(tag, Date.now());
    subscriber.progress('build', `built ${tag}`, 100);
    subscriber.log('info', [
      `built ${tag} from ${what}${outcome.size === undefined ? '' : `: ${formatBytes(outcome.size)}`}, in ${formatDuration(Date.now() - flight.startedMs)}`,
    ]);
    await subscriber.flush();
    return { ref: tag, cached: false };
  }

  #startBuild(spec: {
    tag: string;
    what: string;
    labels: Record<string, string>;
    start: () => Promise<{ context?: Buffer; remote?: string; dockerfile?: string }>;
    secrets: string[];
  }): Flight<BuildOutcome, HookSubscriber> {
    const { tag, secrets } = spec;
    const flight = new Flight<BuildOutcome, HookSubscriber>(
      async (self) => {
        const input = await spec.start();
        const output: string[] = [];
        let pending: string[] = [];
        let timer: NodeJS.Timeout | undefined;
        const flushLines = (): void => {
          clearTimeout(timer);
          timer = undefined;
          const lines = pending;
          pending = [];
          if (lines.length > 0) self.broadcast((subscriber) => subscriber.log('verbose', lines));
        };
        const throttle = new Throttle(this.#options.progressIntervalMs);
        try {
          await this.#docker.buildImage({
            tag,
            labels: { ...spec.labels, [AGENT_LABEL]: this.#agentId },
            ...input,
            signal: self.signal,
            onOutput: (line) => {
              const masked = maskSecrets(line, secrets);
              output.push(masked);
              pending.push(masked);
              timer ??= setTimeout(flushLines, this.#options.logBatchMs);
              const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(masked);
              if (step !== null && throttle.ready()) {
                const percent = Math.floor(((Number(step[1]) - 1) / Number(step[2])) * 100);
                self.broadcast((subscriber) => subscriber.progress('build', masked, percent));
              }
            },
          });
        } catch (error) {
          flushLines();
          if (error instanceof ImageBuildFailedError) {
            throw new ImageBuildFailedError(
              tag,
              maskSecrets(failedBuildMessage(spec.what, output, error.message), secrets),
              { cause: error },
            );
          }
          throw error;
        }
        flushLines();
        const image = await this.#docker.imageExists(tag);
        return { size: image?.size };
      },
      () => {
        if (this.#builds.get(tag) === flight) this.#builds.delete(tag);
      },
    );
    this.#builds.set(tag, flight);
    return flight;
  }
}

const SILENT_HOOKS: ResolveHooks = {
  state: () => Promise.resolve(),
  progress: () => Promise.resolve(),
  log: () => Promise.resolve(),
};

/** The failing step and the last lines of its output, then the engine's error. */
function failedBuildMessage(what: string, output: string[], engineMessage: string): string {
  let stepAt = -1;
  for (let index = output.length - 1; index >= 0; index -= 1) {
    if (/^Step \d+\/\d+ : /.test(output[index] ?? '')) {
      stepAt = index;
      break;
    }
  }
  const reason = engineMessage.replace(/^Building image \S+ failed: /, '');
  if (stepAt < 0) return `building the step image from ${what} failed: ${reason}`;
  const stepOutput = output
    .slice(stepAt + 1)
    .filter((line) => !/^ ---> (Running in|Using cache|[0-9a-f]{12}$)/.test(line))
    .filter((line) => !/^Removing intermediate container/.test(line))
    .slice(-FAILED_STEP_LINES);
  return [
    `building the step image from ${what} failed at "${output[stepAt] ?? ''}":`,
    ...stepOutput,
    reason,
  ].join('\n');
}

/** The feed's credentials for the engine, or undefined when the feed gives none. */
function registryAuth(ref: string, feed: ImageRequest['feed']): RegistryAuth | undefined {
  if (feed === undefined) return undefined;
  if (feed.username === undefined && feed.password === undefined) return undefined;
  return {
    username: feed.username ?? '',
    password: feed.password ?? '',
    serveraddress: feed.registry ?? registryOf(ref),
  };
}

/** The registry host of a reference; Docker Hub's is its historical index address. */
export function registryOf(ref: string): string {
  const full = imageRefForms(ref).at(-1) ?? ref;
  const domain = full.slice(0, full.indexOf('/'));
  return domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain;
}

/** The digest this image has in the repository the reference names, if known. */
function digestOf(image: ImageSummary, ref: string): string | undefined {
  const names = new Set(imageRefForms(ref).map((form) => form.replace(/(:[^:/@]+)?(@.*)?$/, '')));
  for (const repoDigest of image.repoDigests) {
    const at = repoDigest.indexOf('@');
    if (at >= 0 && names.has(repoDigest.slice(0, at))) return repoDigest.slice(at + 1);
  }
  return undefined;
}

function describeImage(image: ImageSummary, digest: string | undefined): string {
  return [
    `id ${image.id.replace(/^sha256:/, '').slice(0, 12)}`,
    digest === undefined ? undefined : `digest ${digest}`,
    formatBytes(image.size),
  ]
    .filter((part) => part !== undefined)
    .join(', ');
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit] ?? 'TiB'}`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
