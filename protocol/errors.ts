/**
 * The stable error codes of the protocol (PROTOCOL.md section 8). Every error class in cuttle carries
 * one of these, so callers branch on `code`, logs print it and the server receives it.
 */
export const ERROR_CODES = [
  'invalid-message',
  'unknown-type',
  'invalid-task',
  'draining',
  'docker-unavailable',
  'image-pull-failed',
  'image-not-found',
  'image-forbidden',
  'image-build-failed',
  'image-incompatible',
  'options-invalid',
  'options-forbidden',
  'host-execution-forbidden',
  'blob-missing',
  'blob-corrupt',
  'tool-invalid',
  'workspace-error',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Codes that are not sent on the wire but name failures inside the agent (config, transport). */
export type LocalErrorCode =
  | 'config-invalid'
  | 'connection-refused'
  | 'unauthorized'
  | 'certificate-mismatch'
  | 'insecure-transport'
  | 'replaced';

/** The base of every error cuttle throws: a stable `code`, a message a user can act on, a `cause`. */
export class CuttleError extends Error {
  readonly code: ErrorCode | LocalErrorCode;

  constructor(code: ErrorCode | LocalErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A message that fails validation at the boundary. `ref` names the task or transfer it was about. */
export class InvalidMessageError extends CuttleError {
  readonly ref: string | undefined;

  constructor(
    code: 'invalid-message' | 'unknown-type',
    message: string,
    ref?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.ref = ref;
  }
}

/** A blob whose size or SHA-256 does not match what its `blob-begin` announced. */
export class BlobCorruptError extends CuttleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('blob-corrupt', message, options);
  }
}

/**
 * Most characters of text an `error` or `rejected` answer carries. A character is at most 6 bytes
 * of JSON (`\uXXXX`), so an answer stays far below the 1 MiB text frame limit, whatever the
 * message it answers quoted or however many faults it had.
 */
export const MAX_ERROR_TEXT_CHARS = 8 * 1024;
/** Most characters of an answer's `ref`: a taskId has at most 128, a SHA-256 64. */
export const MAX_REF_CHARS = 128;

/** `text` cut to `maxChars` characters (not splitting a surrogate pair), saying what was cut. */
export function clipText(text: string, maxChars = MAX_ERROR_TEXT_CHARS): string {
  if (text.length <= maxChars) return text;
  const high = text.charCodeAt(maxChars - 1);
  const end = high >= 0xd800 && high <= 0xdbff ? maxChars - 1 : maxChars;
  return `${text.slice(0, end)}… (${text.length - end} more characters)`;
}

export function isErrorCode(value: string): value is ErrorCode {
  return ERROR_CODES.some((code) => code === value);
}

/** Wraps anything thrown into a CuttleError, keeping it as the cause. */
export function asCuttleError(error: unknown, fallback: ErrorCode = 'internal'): CuttleError {
  if (error instanceof CuttleError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CuttleError(fallback, message, { cause: error });
}
