import { canonicalName } from './option-table.js';
import { OptionsInvalidError } from './options-errors.js';
import type { FlagOccurrence } from './parse-flags.js';
import { parseBoolean } from './units.js';

/** The flags given, grouped by canonical name, in order. */
export class Flags {
  readonly #byName = new Map<string, FlagOccurrence[]>();

  constructor(occurrences: FlagOccurrence[]) {
    for (const occurrence of occurrences) {
      const name = canonicalName(occurrence.definition);
      const list = this.#byName.get(name) ?? [];
      list.push(occurrence);
      this.#byName.set(name, list);
    }
  }

  all(name: string): FlagOccurrence[] {
    return this.#byName.get(name) ?? [];
  }

  /** Every value given, in order. */
  values(name: string): string[] {
    return this.all(name).map((occurrence) => occurrence.value);
  }

  /** The last occurrence (pflag keeps the last value of a non-list flag). */
  last(name: string): FlagOccurrence | undefined {
    return this.all(name).at(-1);
  }

  /** The last value, or undefined when not given. */
  string(name: string): string | undefined {
    return this.last(name)?.value;
  }

  /** The last value, or undefined when not given or given empty. */
  nonEmpty(name: string): string | undefined {
    const value = this.string(name);
    return value === '' ? undefined : value;
  }

  boolean(name: string): boolean | undefined {
    const occurrence = this.last(name);
    return occurrence === undefined ? undefined : parsed(occurrence, parseBoolean);
  }

  number(name: string, parse: (value: string) => number): number | undefined {
    const occurrence = this.last(name);
    return occurrence === undefined ? undefined : parsed(occurrence, parse);
  }
}

/** `options-invalid` for one option as written, with what is wrong with it. */
export function invalid(occurrence: FlagOccurrence, detail: string): OptionsInvalidError {
  return new OptionsInvalidError(
    `Option ${occurrence.written} in Octopus.Action.Container.Options: ${detail}.`,
    occurrence.written,
  );
}

/** The option's value parsed; a parser's plain Error becomes `options-invalid` naming the option. */
export function parsed<T>(occurrence: FlagOccurrence, parse: (value: string) => T): T {
  try {
    return parse(occurrence.value);
  } catch (error) {
    throw invalid(occurrence, errorMessage(error));
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
