import { CuttleError } from '../protocol/index.js';

/**
 * A tool that cannot be installed because of what it is: a name or version that is not a plain
 * folder name, a bundle that is not a complete .tar.gz, or an entry that could land outside the tool
 * folder or is not a file, folder or link. `entry` names the archive entry at fault, when one is.
 */
export class ToolInvalidError extends CuttleError {
  readonly entry: string | undefined;

  constructor(message: string, entry?: string, options?: { cause?: unknown }) {
    super('tool-invalid', message, options);
    this.entry = entry;
  }
}
