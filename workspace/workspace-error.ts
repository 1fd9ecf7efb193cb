import { CuttleError } from '../protocol/index.js';

/** Something in the agent's home folder could not be read, written or removed. */
export class WorkspaceError extends CuttleError {
  readonly path: string;

  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super('workspace-error', message, options);
    this.path = path;
  }
}
