/**
 * Replaces every occurrence of a sensitive value with ********. Values are matched longest first, so
 * a secret that contains another secret is masked whole.
 */
export const MASK = '********';

export class Masker {
  #values = new Set<string>();
  #pattern: RegExp | undefined;
  /** The values without a line end: what can match within text made of whole lines. */
  #linePattern: RegExp | undefined;

  add(value: string): void {
    if (value === '' || this.#values.has(value)) return;
    this.#values.add(value);
    // Multi-line secrets are also masked line by line, since output is masked per line.
    for (const line of value.split(/\r?\n/)) if (line !== '') this.#values.add(line);
    const sorted = [...this.#values].sort((a, b) => b.length - a.length);
    this.#pattern = new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
    const single = sorted.filter((v) => !v.includes('\n'));
    this.#linePattern =
      single.length === 0 ? undefined : new RegExp(single.map(escapeRegExp).join('|'), 'g');
  }

  get size(): number {
    return this.#values.size;
  }

  /**
   * Where text may be cut so that no secret is split by the cut: `cut` itself, or the start of
   * a secret that spans it. Used when a very long line is sent in pieces.
   */
  safeCut(text: string, cut: number): number {
    if (this.#pattern === undefined) return cut;
    for (const match of text.matchAll(this.#pattern)) {
      if (match.index >= cut) break;
      if (match.index + match[0].length > cut) return match.index;
    }
    return cut;
  }

  /** Length of the longest secret, so a piece can keep back enough text to complete one. */
  get longest(): number {
    let longest = 0;
    for (const value of this.#values) longest = Math.max(longest, value.length);
    return longest;
  }

  mask(text: string): string {
    return this.#pattern === undefined ? text : text.replace(this.#pattern, MASK);
  }

  /**
   * Masks lines joined by '\n' in one pass, exactly as mask() would each line: a value with a line
   * end is masked through its lines, which are values too, so it is left out here and a match
   * never spans two lines.
   */
  maskLines(text: string): string {
    return this.#linePattern === undefined ? text : text.replace(this.#linePattern, MASK);
  }
}

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
