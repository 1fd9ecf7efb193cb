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

export function isErrorCode(value: string): value is ErrorCode {
  return ERROR_CODES.some((code) => code === value);
}

/** Wraps anything thrown into a CuttleError, keeping it as the cause. */
export function asCuttleError(error: unknown, fallback: ErrorCode = 'internal'): CuttleError {
  if (error instanceof CuttleError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CuttleError(fallback, message, { cause: error });
}
