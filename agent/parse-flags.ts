/** Turns node:util parseArgs errors into ones a user can act on: the flag, and the nearest known one. */
import { closest, distance } from 'fastest-levenshtein';
import { ConfigError } from './config.js';

export function withFlagErrors<T>(knownFlags: Record<string, unknown>, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '(--?[^']+)'/.exec(message)?.[1];
    if (unknown !== undefined) {
      const nearest = closest(
        unknown,
        Object.keys(knownFlags).map((name) => `--${name}`),
      );
      const hint = distance(unknown, nearest) <= 3 ? ` (did you mean ${nearest}?)` : '';
      throw new ConfigError(`unknown flag ${unknown}${hint}`, { cause: error });
    }
    throw new ConfigError(message.split('\n')[0] ?? message, { cause: error });
  }
}
