import { CuttleError } from '../../protocol/errors.js';

/**
 * `Octopus.Action.Container.Options` cannot be used: malformed, unknown or unsupported option, or an
 * option that would break the step. The message names the option and says what to write instead.
 */
export class OptionsInvalidError extends CuttleError {
  /** The option as written (`--memroy`), when the problem is one option; else undefined. */
  readonly option: string | undefined;

  constructor(message: string, option?: string, options?: { cause?: unknown }) {
    super('options-invalid', message, options);
    this.option = option;
  }
}

/** An option the worker's policy forbids; the message names the setting that would allow it. */
export class OptionsForbiddenError extends CuttleError {
  readonly option: string;
  /** The configuration key that would allow it, e.g. `containerOptions.allowPrivileged`. */
  readonly setting: string;

  constructor(message: string, option: string, setting: string) {
    super('options-forbidden', message);
    this.option = option;
    this.setting = setting;
  }
}
