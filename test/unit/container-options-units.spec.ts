import assert from 'node:assert/strict';
import {
  parseBoolean,
  parseBytes,
  parseDuration,
  parseInteger,
  parseNanoCpus,
  parseSwapBytes,
} from '../../images/container-options/units.js';

describe('container options: units parse like the docker CLI', function () {
  it('parses sizes with binary units, as go-units RAMInBytes', function () {
    const cases: [string, number][] = [
      ['1024', 1024],
      ['256m', 256 * 1024 ** 2],
      ['256M', 256 * 1024 ** 2],
      ['1g', 1024 ** 3],
      ['1GB', 1024 ** 3],
      ['1GiB', 1024 ** 3],
      ['1.5g', 1.5 * 1024 ** 3],
      ['512 kb', 512 * 1024],
      ['10b', 10],
      ['0', 0],
      ['1e3', 1000],
      ['2t', 2 * 1024 ** 4],
    ];
    for (const [text, bytes] of cases) assert.equal(parseBytes(text), bytes, text);
  });

  it('says what is wrong with a bad size', function () {
    assert.throws(() => parseBytes('12x'), {
      message:
        "invalid size '12x': unknown unit 'x' (use b, k, m, g, t or p, optionally followed by b or ib)",
    });
    assert.throws(() => parseBytes('m'), { message: "invalid size 'm': it has no number" });
    assert.throws(() => parseBytes('1mbb'), { message: /unknown unit 'mbb'/ });
    assert.throws(() => parseBytes('1mx'), { message: /unknown unit 'mx'/ });
    assert.throws(() => parseBytes('1.2.3m'), {
      message: "invalid size '1.2.3m': '1.2.3' is not a number",
    });
    assert.throws(() => parseBytes('-1m'), { message: "invalid size '-1m': it is negative" });
  });

  it('accepts -1 as unlimited swap only', function () {
    assert.equal(parseSwapBytes('-1'), -1);
    assert.equal(parseSwapBytes('1g'), 1024 ** 3);
  });

  it('parses CPUs as nano-CPUs, including fractions and exponents', function () {
    assert.equal(parseNanoCpus('1.5'), 1_500_000_000);
    assert.equal(parseNanoCpus('0.25'), 250_000_000);
    assert.equal(parseNanoCpus('2'), 2_000_000_000);
    assert.equal(parseNanoCpus('3/2'), 1_500_000_000);
    assert.equal(parseNanoCpus('2e-1'), 200_000_000);
    assert.equal(parseNanoCpus('.5'), 500_000_000);
    assert.throws(() => parseNanoCpus('abc'), {
      message: "'abc' is not a number of CPUs (write e.g. 1.5)",
    });
    assert.throws(() => parseNanoCpus('0.0000000001'), {
      message: "'0.0000000001' is too precise (at most 9 decimal places)",
    });
    assert.throws(() => parseNanoCpus('1/0'), { message: "'1/0' divides by zero" });
  });

  it('parses durations like Go', function () {
    assert.equal(parseDuration('30s'), 30e9);
    assert.equal(parseDuration('1m30s'), 90e9);
    assert.equal(parseDuration('1.5h'), 5400e9);
    assert.equal(parseDuration('500ms'), 500e6);
    assert.equal(parseDuration('10us'), 10e3);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('-1s'), -1e9);
    assert.throws(() => parseDuration('30'), {
      message: "invalid duration '30' (write e.g. 30s, 1m30s or 500ms; units ns us ms s m h)",
    });
    assert.throws(() => parseDuration('1d'), {
      message: "invalid duration '1d': unknown unit 'd' (use ns us ms s m h)",
    });
    assert.throws(() => parseDuration(''), { message: /invalid duration ''/ });
  });

  it('parses integers as pflag does (base prefixes, underscores, ranges)', function () {
    const int64 = { bits: 64, signed: true };
    assert.equal(parseInteger('512', int64), 512);
    assert.equal(parseInteger('-1', int64), -1);
    assert.equal(parseInteger('0x10', int64), 16);
    assert.equal(parseInteger('010', int64), 8);
    assert.equal(parseInteger('0b101', int64), 5);
    assert.equal(parseInteger('1_000', int64), 1000);
    assert.throws(() => parseInteger('1.5', int64), { message: "'1.5' is not an integer" });
    assert.throws(() => parseInteger('', int64), { message: "'' is not an integer" });
    assert.throws(() => parseInteger('70000', { bits: 16, signed: false }), {
      message: "'70000' is out of range (0 to 65535)",
    });
    assert.throws(() => parseInteger('-1', { bits: 16, signed: false }), {
      message: "'-1' is not an integer",
    });
  });

  it('parses booleans like strconv.ParseBool', function () {
    for (const yes of ['1', 't', 'T', 'true', 'TRUE', 'True'])
      assert.equal(parseBoolean(yes), true);
    for (const no of ['0', 'f', 'F', 'false', 'FALSE', 'False'])
      assert.equal(parseBoolean(no), false);
    assert.throws(() => parseBoolean('yes'), {
      message: "'yes' is not a boolean (write true or false)",
    });
  });
});
