// Environment and identity: -e, --env-file, --user, --workdir, --hostname, --domainname.
import { posix } from 'node:path';
import type { OptionsContext, TranslatedOptions } from '../container-settings.js';
import { invalid, type Flags } from '../given-flags.js';
import { parseKeyValueFile, readStepFile } from '../step-files.js';
import { splitKeyValue } from '../value-syntax.js';

export function translateIdentity(flags: Flags, { config }: TranslatedOptions): void {
  const user = flags.nonEmpty('user');
  if (user !== undefined) config.User = user;
  const workdir = flags.last('workdir');
  if (workdir !== undefined && workdir.value !== '') {
    if (!posix.isAbsolute(workdir.value)) {
      throw invalid(workdir, 'the working directory must be an absolute path in the container');
    }
    config.WorkingDir = workdir.value;
  }
  const hostname = flags.nonEmpty('hostname');
  if (hostname !== undefined) config.Hostname = hostname;
  const domainname = flags.nonEmpty('domainname');
  if (domainname !== undefined) config.Domainname = domainname;
}

export function translateEnvironment(
  flags: Flags,
  { config, warnings }: TranslatedOptions,
  ctx: OptionsContext,
): void {
  const entries: string[] = [];
  for (const occurrence of flags.all('env-file')) {
    const text = readStepFile(occurrence, ctx, 'env file');
    entries.push(
      ...parseKeyValueFile(occurrence, text, (key) =>
        warnings.push(
          `${occurrence.written}: ${key} has no value and is left out; cuttle never copies the worker's environment into a step (write ${key}=value).`,
        ),
      ),
    );
  }
  for (const occurrence of flags.all('env')) {
    const [name, value] = splitKeyValue(occurrence.value);
    if (name === '') {
      throw invalid(occurrence, `invalid environment variable: ${occurrence.value}`);
    }
    if (value === undefined) {
      throw invalid(
        occurrence,
        `it has no value: the docker CLI would copy ${occurrence.value} from the environment it runs in, and cuttle never passes the worker's environment to a step. Write ${occurrence.value}=value`,
      );
    }
    entries.push(occurrence.value);
  }
  if (entries.length > 0) config.Env = uniqueVariables(entries);
}

/**
 * `NAME=value` entries with each variable once: the last value wins, in the place it was last
 * given.
 */
export function uniqueVariables(entries: readonly string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of entries) {
    const [name] = splitKeyValue(entry);
    byName.delete(name);
    byName.set(name, entry);
  }
  return [...byName.values()];
}
