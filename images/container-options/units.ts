// Value parsers that accept exactly what the docker CLI accepts (go-units, pflag's strconv calls,
// Go's time.ParseDuration and big.Rat), and return plain numbers for the Engine API. Each throws a
// plain Error whose message says what is wrong with the value; the translator adds the option name.

const BINARY_UNITS: Record<string, number> = {
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** Go's strconv.ParseFloat for decimal input (no hex floats, no inf/nan, no underscores). */
const DECIMAL_FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A size in bytes like the CLI's `units.RAMInBytes`: `256m`, `1g`, `1.5GiB`, `512 kb`, `1024`. */
export function parseBytes(value: string): number {
  let sep = -1;
  for (let i = value.length - 1; i >= 0; i -= 1) {
    if ('0123456789. '.includes(value.charAt(i))) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw new Error(`invalid size '${value}': it has no number`);
  const space = value.charAt(sep) === ' ';
  const num = space ? value.slice(0, sep) : value.slice(0, sep + 1);
  let suffix = value.slice(sep + 1);
  if (!DECIMAL_FLOAT.test(num))
    throw new Error(`invalid size '${value}': '${num}' is not a number`);
  let size = Number(num);
  if (size < 0) throw new Error(`invalid size '${value}': it is negative`);
  if (suffix.length > 0) {
    const bad = (): Error =>
      new Error(
        `invalid size '${value}': unknown unit '${suffix}' (use b, k, m, g, t or p, optionally followed by b or ib)`,
      );
    if (suffix.length > 3) throw bad();
    suffix = suffix.toLowerCase();
    if (suffix.startsWith('b')) {
      if (suffix.length > 1) throw bad();
    } else {
      const multiplier = BINARY_UNITS[suffix.charAt(0)];
      if (multiplier === undefined) throw bad();
      if (suffix.length === 2 && suffix.charAt(1) !== 'b') throw bad();
      if (suffix.length === 3 && suffix.slice(1) !== 'ib') throw bad();
      size *= multiplier;
    }
  }
  return checkedInteger(Math.trunc(size), value);
}

/** `--memory-swap`: a size, or -1 for unlimited swap. */
export function parseSwapBytes(value: string): number {
  return value === '-1' ? -1 : parseBytes(value);
}

/**
 * `--cpus`: a rational number of CPUs (`1.5`, `0.25`, `3/2`, `2e-1`) as nano-CPUs, rejecting values
 * more precise than one nano-CPU, like the CLI's big.Rat parsing.
 */
export function parseNanoCpus(value: string): number {
  const fraction = /^([+-]?\d+)\/(\d+)$/.exec(value);
  let numerator: bigint;
  let denominator: bigint;
  if (fraction !== null) {
    numerator = BigInt(fraction[1] ?? '0');
    denominator = BigInt(fraction[2] ?? '1');
    if (denominator === 0n) throw new Error(`'${value}' divides by zero`);
  } else {
    const decimal = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(value);
    const whole = decimal?.[2] ?? '';
    const part = decimal?.[3] ?? '';
    if (decimal === null || (whole === '' && part === '')) {
      throw new Error(`'${value}' is not a number of CPUs (write e.g. 1.5)`);
    }
    const exponent = Number(decimal[4] ?? '0') - part.length;
    numerator = BigInt(`${decimal[1] ?? ''}${whole}${part}` || '0');
    denominator = 1n;
    if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
    else denominator = 10n ** BigInt(-exponent);
  }
  const scaled = numerator * 1_000_000_000n;
  if (scaled % denominator !== 0n) {
    throw new Error(`'${value}' is too precise (at most 9 decimal places)`);
  }
  return checkedInteger(Number(scaled / denominator), value);
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration (`30s`, `1m30s`, `1.5h`, `500ms`, `0`), in nanoseconds. */
export function parseDuration(value: string): number {
  const invalid = (): Error =>
    new Error(`invalid duration '${value}' (write e.g. 30s, 1m30s or 500ms; units ns us ms s m h)`);
  let rest = value;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (rest.length > 0) {
    const match = part.exec(rest);
    if (match === null) throw invalid();
    const [all, whole = '', fraction = '', unit = ''] = match;
    if (whole === '' && fraction === '') throw invalid();
    const scale = DURATION_UNITS[unit];
    if (scale === undefined) {
      throw new Error(`invalid duration '${value}': unknown unit '${unit}' (use ns us ms s m h)`);
    }
    total += Number(`${whole || '0'}.${fraction || '0'}`) * scale;
    rest = rest.slice(all.length);
  }
  return checkedInteger(sign * Math.trunc(total), value);
}

/**
 * pflag's integer flags: strconv.ParseInt/ParseUint with base 0 (`10`, `-1`, `0x1f`, `0o17`, `017`,
 * `0b101`, `1_000`) within `bits`.
 */
export function parseInteger(value: string, options: { bits: number; signed: boolean }): number {
  const invalid = (): Error => new Error(`'${value}' is not an integer`);
  const match = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(
    value,
  );
  if (match === null) throw invalid();
  const sign = match[1] ?? '';
  let digits = match[2] ?? '';
  if (digits.includes('_')) {
    // Go allows an underscore only between digits, or between a base prefix and a digit.
    if (digits.includes('__') || digits.endsWith('_')) throw invalid();
    digits = digits.replaceAll('_', '');
  }
  if (sign === '-' && !options.signed) throw invalid();
  let magnitude: bigint;
  if (/^0[0-7]+$/.test(digits)) magnitude = BigInt(`0o${digits.slice(1)}`);
  else magnitude = BigInt(digits.toLowerCase());
  const result = sign === '-' ? -magnitude : magnitude;
  const max = options.signed
    ? 2n ** BigInt(options.bits - 1) - 1n
    : 2n ** BigInt(options.bits) - 1n;
  const min = options.signed ? -(2n ** BigInt(options.bits - 1)) : 0n;
  if (result > max || result < min) {
    throw new Error(`'${value}' is out of range (${min} to ${max})`);
  }
  return checkedInteger(Number(result), value);
}

/** pflag's Int64 flags. */
export function parseInt64(value: string): number {
  return parseInteger(value, { bits: 64, signed: true });
}

/** pflag's Uint16 flags. */
export function parseUint16(value: string): number {
  return parseInteger(value, { bits: 16, signed: false });
}

/** Go's strconv.ParseBool, used by pflag for `--flag=value` on boolean flags. */
export function parseBoolean(value: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new Error(`'${value}' is not a boolean (write true or false)`);
}

function checkedInteger(result: number, value: string): number {
  if (!Number.isSafeInteger(result)) throw new Error(`'${value}' is too large`);
  return result;
}
