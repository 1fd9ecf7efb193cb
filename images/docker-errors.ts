import { CuttleError } from '../protocol/errors.js';

/** The engine could not be reached (no socket, refused, no permission, DOCKER_HOST malformed). */
export class DockerUnavailableError extends CuttleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('docker-unavailable', message, options);
  }
}

export class ImageNotFoundError extends CuttleError {
  readonly ref: string;

  constructor(ref: string, message: string, options?: { cause?: unknown }) {
    super('image-not-found', message, options);
    this.ref = ref;
  }
}

/**
 * Why a pull failed, as far as the engine's words tell: `unreachable` and `server-error` are
 * transient (retried, and with pull policy `always` a cached image is used instead).
 */
export type PullFailureReason =
  'unauthorized' | 'unreachable' | 'server-error' | 'rate-limited' | 'other';

export class ImagePullFailedError extends CuttleError {
  readonly ref: string;
  readonly reason: PullFailureReason;

  constructor(
    ref: string,
    message: string,
    options?: { cause?: unknown; reason?: PullFailureReason },
  ) {
    super('image-pull-failed', message, options);
    this.ref = ref;
    this.reason = options?.reason ?? 'other';
  }

  /** The registry could not be reached or answered 5xx: worth a retry, or the cached image. */
  get transient(): boolean {
    return this.reason === 'unreachable' || this.reason === 'server-error';
  }
}

/** The image, or its pull policy, is outside what the worker's configuration allows. */
export class ImageForbiddenError extends CuttleError {
  readonly ref: string;
  /** The configuration setting that forbids it, e.g. `allowedImages`. */
  readonly setting: string;

  constructor(ref: string, setting: string, message: string) {
    super('image-forbidden', message);
    this.ref = ref;
    this.setting = setting;
  }
}

/** The image cannot run the task's tool (its C library does not match the tool's). */
export class ImageIncompatibleError extends CuttleError {
  readonly ref: string;

  constructor(ref: string, message: string) {
    super('image-incompatible', message);
    this.ref = ref;
  }
}

export class ImageBuildFailedError extends CuttleError {
  readonly tag: string;

  constructor(tag: string, message: string, options?: { cause?: unknown }) {
    super('image-build-failed', message, options);
    this.tag = tag;
  }
}

/** Any other answer of the engine that the caller cannot fix by changing its input. */
export class DockerOperationError extends CuttleError {
  /** The engine's HTTP status, when it answered at all. */
  readonly statusCode: number | undefined;

  constructor(message: string, statusCode: number | undefined, options?: { cause?: unknown }) {
    super('internal', message, options);
    this.statusCode = statusCode;
  }
}

// Node's codes for a socket or host that does not answer; dockerode passes them through unchanged.
const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The HTTP status of a dockerode error, or undefined when the engine never answered. */
export function statusCodeOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    return typeof error.statusCode === 'number' ? error.statusCode : undefined;
  }
  return undefined;
}

function systemCodeOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    return typeof error.code === 'string' ? error.code : undefined;
  }
  return undefined;
}

/** The engine's own words: the `message` of its JSON error body, else the error's message. */
export function engineMessageOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'json' in error) {
    const json = error.json;
    if (typeof json === 'object' && json !== null && 'message' in json) {
      if (typeof json.message === 'string') return json.message.trim();
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  // For streamed calls dockerode puts the body only in the message, after its own prefix.
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/**
 * Whether the engine said the image is missing ("No such image: alpine:nope"). Container create
 * also answers 404 for a missing network, `--link` target or volume plugin, which are not.
 */
export function isNoSuchImage(error: unknown): boolean {
  return statusCodeOf(error) === 404 && /\bno such image\b/i.test(engineMessageOf(error));
}

export function isUnreachable(error: unknown): boolean {
  const code = systemCodeOf(error);
  return statusCodeOf(error) === undefined && code !== undefined && UNREACHABLE_CODES.has(code);
}

export function unavailable(endpoint: string, error: unknown): DockerUnavailableError {
  const code = systemCodeOf(error) ?? 'error';
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'give the user running cuttle access to the socket (e.g. add it to the docker group)'
      : 'start the Docker engine, or set DOCKER_HOST to where it listens';
  return new DockerUnavailableError(
    `Cannot reach the Docker engine at ${endpoint} (${code}): ${hint}.`,
    { cause: error },
  );
}

/**
 * Maps a failure of any engine call: unreachable engine -> docker-unavailable, anything else ->
 * internal with the engine's message. Callers with a more specific meaning map before this.
 */
export function toDockerError(endpoint: string, action: string, error: unknown): CuttleError {
  if (error instanceof CuttleError) return error;
  if (isUnreachable(error)) return unavailable(endpoint, error);
  return new DockerOperationError(
    `Docker engine failed to ${action}: ${engineMessageOf(error)}`,
    statusCodeOf(error),
    { cause: error },
  );
}
