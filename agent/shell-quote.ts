/** Quotes a value for a POSIX shell: single quotes, with a quote written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
