import { OptionsInvalidError } from './options-errors.js';

/**
 * Splits a `docker run` options string into words as a POSIX shell would (`sh -c "docker run $X"`)
 * — without ever invoking a shell, and refusing what a shell would expand or interpret instead of
 * silently doing something else with it:
 *
 * - blanks (space, tab, newline) separate words; `''` and `""` make an empty word;
 * - single quotes keep everything literally up to the next `'`;
 * - inside double quotes a backslash escapes only `$`, `` ` ``, `"`, `\` and a newline (which it
 *   removes); before any other character it stays;
 * - outside quotes a backslash keeps the next character literally; backslash-newline is removed;
 * - `#` at the start of a word starts a comment that runs to the end of the line.
 *
 * Refused with `options-invalid`: unclosed quotes, a trailing backslash, and unquoted operators
 * (`; & | < > ( )`), `$` and backquotes anywhere but inside single quotes (expansion would read the
 * worker's environment or run a command), and an unquoted `~` starting a word (home expansion).
 * Glob characters (`* ? [`) are kept literally: a shell would only expand them against whatever
 * files happened to be in its working directory.
 */
export function splitWords(input: string): string[] {
  const words: string[] = [];
  let word = '';
  // Whether a word has started: '' is a word, but blanks between words are not.
  let inWord = false;
  let i = 0;
  const fail = (what: string, at: number): never => {
    throw new OptionsInvalidError(
      `Octopus.Action.Container.Options: ${what} at character ${at + 1} of ${JSON.stringify(input)}.`,
    );
  };
  while (i < input.length) {
    const c = input.charAt(i);
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i += 1;
    } else if (c === '#' && !inWord) {
      const end = input.indexOf('\n', i);
      i = end === -1 ? input.length : end;
    } else if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end === -1) fail("unclosed single quote (')", i);
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      const start = i;
      i += 1;
      inWord = true;
      for (;;) {
        if (i >= input.length) fail('unclosed double quote (")', start);
        const d = input.charAt(i);
        if (d === '"') {
          i += 1;
          break;
        }
        if (d === '\\') {
          const next = input.charAt(i + 1);
          if (next === '\n') {
            i += 2;
          } else if (next === '$' || next === '`' || next === '"' || next === '\\') {
            word += next;
            i += 2;
          } else {
            word += d;
            i += 1;
          }
        } else if (d === '$' || d === '`') {
          fail(expansionMessage(d), i);
        } else {
          word += d;
          i += 1;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= input.length) fail('a trailing backslash (\\) escapes nothing', i);
      const next = input.charAt(i + 1);
      if (next !== '\n') {
        word += next;
        inWord = true;
      }
      i += 2;
    } else if (c === '$' || c === '`') {
      fail(expansionMessage(c), i);
    } else if (';&|<>()'.includes(c)) {
      fail(
        `unquoted shell operator "${c}": cuttle runs no shell, so quote it ('${c}') to pass it literally`,
        i,
      );
    } else if (c === '~' && !inWord) {
      fail(
        "unquoted ~ at the start of a word: cuttle does not expand home folders; write the absolute path, or quote it ('~') to pass it literally",
        i,
      );
    } else {
      word += c;
      inWord = true;
      i += 1;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function expansionMessage(c: string): string {
  return c === '$'
    ? "\"$\" would expand a variable of the worker's environment, which cuttle never passes to a step; write the value itself, or use single quotes ('$') to pass it literally"
    : "a backquote (`) would run a command on the worker, which cuttle never does; use single quotes ('`') to pass it literally";
}
