/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests that scrape
 * `/metrics`: every line must be a comment, blank, or a well-formed sample, so a malformed
 * exposition fails the test instead of being skipped.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE name type` lines. */
  types: Map<string, string>;
  help: Map<string, string>;
}

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      (kind === 'TYPE' ? types : help).set(name, rest);
      return;
    }
    if (line.startsWith('#')) return;
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([^ ]+)(?: -?\d+)?$/.exec(line) ??
      fail(index, line, 'not a sample');
    const [, name = '', labelText, valueText = ''] = sample;
    // As Prometheus reads them (Go's ParseFloat): Inf and NaN in any case; prom-client writes Nan.
    const special = valueText.toLowerCase();
    const value =
      special === '+inf' || special === 'inf'
        ? Infinity
        : special === '-inf'
          ? -Infinity
          : special === 'nan'
            ? NaN
            : Number(valueText);
    if (Number.isNaN(value) && special !== 'nan') fail(index, line, 'bad value');
    samples.push({ name, labels: parseLabels(labelText ?? '', index, line), value });
  });
  return { samples, types, help };
}

function parseLabels(text: string, index: number, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < text.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(text) ?? fail(index, line, 'bad labels');
    const [, key = '', raw = ''] = match;
    labels[key] = raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    at = pattern.lastIndex;
  }
  return labels;
}

function fail(index: number, line: string, why: string): never {
  throw new Error(`metrics line ${index + 1}: ${why}: ${line}`);
}

/** The value of the one sample with this name and (at least) these labels. */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = exposition.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name}: ${found.length} samples match`);
  return found[0]?.value;
}
