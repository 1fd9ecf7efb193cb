/** Why `cuttle service` cannot do what it was asked; `code` is stable, the message says what to do. */
export type ServiceErrorCode =
  | 'usage'
  | 'not-root'
  | 'no-systemd'
  | 'no-docker-group'
  | 'unusable-path'
  | 'conflict'
  | 'command-failed';

export class ServiceError extends Error {
  readonly code: ServiceErrorCode;

  constructor(code: ServiceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
