import { distance } from 'fastest-levenshtein';
import { OptionsInvalidError } from './options-errors.js';
import {
  OPTION_TABLE,
  findLongOption,
  findShortOption,
  type OptionDefinition,
} from './option-table.js';

/** One flag as given: its definition, its value (`'true'` for a bare boolean) and how it was written. */
export interface FlagOccurrence {
  definition: OptionDefinition;
  value: string;
  /** As the user wrote it, for messages: `--memory 1g`, `-e FOO=1`, `-it`. */
  written: string;
}

/**
 * Parses words as pflag (the docker CLI's flag library) does: `--name=value`, `--name value` (the
 * next word is the value even if it starts with a dash), `-xVALUE`, `-x=VALUE`, `-x VALUE`, combined
 * booleans (`-it`), and `--` ending the flags. Words that are not flags are refused: the image and
 * command come from the step, not from the options.
 */
export function parseFlags(words: readonly string[]): FlagOccurrence[] {
  const occurrences: FlagOccurrence[] = [];
  let i = 0;
  while (i < words.length) {
    const word = words[i] ?? '';
    i += 1;
    if (word === '--') {
      const rest = words.slice(i);
      if (rest.length > 0) throw unexpectedArgument(rest[0] ?? '', occurrences);
      break;
    }
    if (word.startsWith('--')) {
      const body = word.slice(2);
      if (body.startsWith('-') || body.startsWith('=')) {
        throw new OptionsInvalidError(
          `Bad option syntax ${JSON.stringify(word)} in Octopus.Action.Container.Options: write --name or --name=value.`,
          word,
        );
      }
      const equals = body.indexOf('=');
      const name = equals === -1 ? body : body.slice(0, equals);
      const definition = findLongOption(name);
      if (definition === undefined) throw unknownLong(name);
      let value: string;
      let written = word;
      if (equals !== -1) value = body.slice(equals + 1);
      else if (!definition.takesValue) value = 'true';
      else if (i < words.length) {
        value = words[i] ?? '';
        written = `${word} ${value}`;
        i += 1;
      } else throw missingValue(`--${name}`, definition);
      occurrences.push({ definition, value, written });
    } else if (word.startsWith('-') && word.length > 1) {
      let shorthands = word.slice(1);
      while (shorthands.length > 0) {
        const letter = shorthands.charAt(0);
        const definition = findShortOption(letter);
        if (definition === undefined) throw unknownShort(letter, word);
        let value: string;
        let written = `-${letter}`;
        if (shorthands.length > 2 && shorthands.charAt(1) === '=') {
          value = shorthands.slice(2);
          written = `-${letter}=${value}`;
          shorthands = '';
        } else if (!definition.takesValue) {
          value = 'true';
          shorthands = shorthands.slice(1);
        } else if (shorthands.length > 1) {
          value = shorthands.slice(1);
          written = `-${letter}${value}`;
          shorthands = '';
        } else if (i < words.length) {
          value = words[i] ?? '';
          written = `-${letter} ${value}`;
          i += 1;
          shorthands = '';
        } else throw missingValue(`-${letter}`, definition);
        occurrences.push({ definition, value, written });
      }
    } else {
      throw unexpectedArgument(word, occurrences);
    }
  }
  return occurrences;
}

function unknownLong(name: string): OptionsInvalidError {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const definition of OPTION_TABLE) {
    if (definition.aliasOf !== undefined) continue;
    const d = distance(name, definition.name);
    if (d < bestDistance) {
      best = definition.name;
      bestDistance = d;
    }
  }
  const hint =
    best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 2))
      ? ` Did you mean --${best}?`
      : ' See docs/container-options.md for the options cuttle supports.';
  return new OptionsInvalidError(
    `Unknown option --${name} in Octopus.Action.Container.Options.${hint}`,
    `--${name}`,
  );
}

function unknownShort(letter: string, word: string): OptionsInvalidError {
  const letters = OPTION_TABLE.flatMap((d) => (d.short === undefined ? [] : [`-${d.short}`]));
  letters.sort();
  const within = word === `-${letter}` ? '' : ` (in ${word})`;
  return new OptionsInvalidError(
    `Unknown option -${letter}${within} in Octopus.Action.Container.Options. The one-letter options are ${letters.join(' ')}; long options start with two dashes.`,
    `-${letter}`,
  );
}

function missingValue(option: string, definition: OptionDefinition): OptionsInvalidError {
  return new OptionsInvalidError(
    `Option ${option} needs a value (it sets ${definition.mapsTo}), but Octopus.Action.Container.Options ends after it.`,
    option,
  );
}

function unexpectedArgument(word: string, before: FlagOccurrence[]): OptionsInvalidError {
  const previous = before.at(-1);
  const hint =
    previous !== undefined && !previous.definition.takesValue
      ? ` ${previous.written} takes no separate value: write --${previous.definition.name}=${word} to set it.`
      : '';
  return new OptionsInvalidError(
    `Unexpected argument ${JSON.stringify(word)} in Octopus.Action.Container.Options: it may hold only options; the image and the command come from the step.${hint}`,
    word,
  );
}
