import type { OptionsContext, TranslatedOptions } from './container-settings.js';
import { translateDevices } from './families/devices.js';
import { translateEnvironment, translateIdentity } from './families/environment.js';
import { translateMounts, translateVolumes } from './families/mounts.js';
import { translateNetworking, translatePorts } from './families/network.js';
import { translateResources } from './families/resources.js';
import {
  translateEntrypoint,
  translateHealthcheck,
  translateLabels,
  translateLogging,
  translatePlatform,
  translateRestart,
  translateRuntime,
  translateStop,
} from './families/runtime.js';
import { translateSecurity } from './families/security.js';
import { Flags, parsed } from './given-flags.js';
import { OptionsInvalidError } from './options-errors.js';
import { parseFlags, type FlagOccurrence } from './parse-flags.js';
import { splitWords } from './split-words.js';
import { parseBoolean } from './units.js';

/** Translates some of the flags into `out`; each family (families/*.ts) exports a few. */
type Translator = (flags: Flags, out: TranslatedOptions, ctx: OptionsContext) => void;

// In this order: it decides which of several bad options is reported, and the order of the
// warnings.
const TRANSLATORS: readonly Translator[] = [
  translateIdentity,
  translateStop,
  translateEntrypoint,
  translateEnvironment,
  translateLabels,
  translateVolumes,
  translateMounts,
  translatePorts,
  translateResources,
  translateSecurity,
  translateDevices,
  translateHealthcheck,
  translateRuntime,
  translateLogging,
  translateRestart,
  translateNetworking,
  translatePlatform,
];

/**
 * Translates `Octopus.Action.Container.Options` into the Engine API settings that `docker create`
 * (docker CLI 28, as it talks to API 1.41+) would send for the same flags. Throws
 * OptionsInvalidError (`options-invalid`) for malformed, unknown or refused options. Reads
 * `--env-file`, `--label-file` and seccomp profiles, which must be inside `ctx.workFolder`.
 */
export function translateContainerOptions(options: string, ctx: OptionsContext): TranslatedOptions {
  const occurrences = parseFlags(splitWords(options));
  refuseOptions(occurrences);
  const flags = new Flags(occurrences);
  const result: TranslatedOptions = { config: {}, hostConfig: {}, warnings: [], bindMounts: [] };
  for (const translate of TRANSLATORS) translate(flags, result, ctx);
  return result;
}

/** Throws for the first flag cuttle refuses (option-table.ts says why). */
function refuseOptions(occurrences: readonly FlagOccurrence[]): void {
  for (const occurrence of occurrences) {
    const { refusal, takesValue } = occurrence.definition;
    if (refusal === undefined) continue;
    // `--rm=false`, `-t=false`: asking for the default is harmless.
    if (!takesValue && parsed(occurrence, parseBoolean) === false) continue;
    throw new OptionsInvalidError(
      `Option ${occurrence.written} cannot be used in Octopus.Action.Container.Options: ${refusal}.`,
      occurrence.written,
    );
  }
}
