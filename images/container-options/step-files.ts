// The files on the worker that options name: `--env-file`, `--label-file`, seccomp profiles, and
// the relative host paths of `-v` and `--mount`. All are taken relative to the step's folder.
import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type { OptionsContext } from './container-settings.js';
import { errorMessage, invalid } from './given-flags.js';
import type { FlagOccurrence } from './parse-flags.js';
import { splitKeyValue } from './value-syntax.js';

/** A host path as given to `-v` or `--mount source=`: `./…` (or `..`) is relative to the step's folder. */
export function fromStepFolder(path: string, ctx: OptionsContext): string {
  return path.startsWith('.') ? resolve(ctx.workFolder, path) : path;
}

/** Reads the file the option names, which must be inside the step's folder. */
export function readStepFile(
  occurrence: FlagOccurrence,
  ctx: OptionsContext,
  what: string,
): string {
  const path = resolve(ctx.workFolder, occurrence.value);
  let real: string;
  let folder: string;
  try {
    folder = realpathSync(ctx.workFolder);
    real = realpathSync(path);
  } catch (error) {
    throw invalid(occurrence, `cannot read the ${what} ${path}: ${describeError(error)}`);
  }
  const inside = relative(folder, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw invalid(
      occurrence,
      `the ${what} must be inside the step's folder ${ctx.workFolder} (cuttle reads no other files on the worker)`,
    );
  }
  try {
    return readFileSync(real, 'utf8');
  } catch (error) {
    throw invalid(occurrence, `cannot read the ${what} ${path}: ${describeError(error)}`);
  }
}

/** A file system error as its code (`it does not exist` for ENOENT); any other error's message. */
export function describeError(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return error.code === 'ENOENT' ? 'it does not exist' : error.code;
  }
  return errorMessage(error);
}

/** The CLI's kvfile parser; bare keys (which the CLI looks up in its own environment) are dropped. */
export function parseKeyValueFile(
  occurrence: FlagOccurrence,
  text: string,
  onBareKey: (key: string) => void,
): string[] {
  const lines: string[] = [];
  const all = text.split(/\r?\n/);
  if (all.at(-1) === '') all.pop();
  all.forEach((raw, index) => {
    const line = (index === 0 ? raw.replace(/^\uFEFF/, '') : raw).replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const [key, value] = splitKeyValue(line);
    if (key === '') throw invalid(occurrence, `no variable name on line '${line}'`);
    if (/[ \t]/.test(key)) throw invalid(occurrence, `variable '${key}' contains whitespaces`);
    if (value === undefined) onBareKey(key);
    else lines.push(line);
  });
  return lines;
}
