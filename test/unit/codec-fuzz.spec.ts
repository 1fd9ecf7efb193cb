/**
 * The decoders never throw anything but their own errors, whatever arrives: mutated valid
 * messages, wrong types, huge strings, deep nesting, invalid UTF-8. Bounded in count and time;
 * the seed is printed on failure so a case can be replayed.
 */
import assert from 'node:assert/strict';
import { CuttleError, decodeAgentMessage, decodeServerMessage } from '../../protocol/index.js';

const VALID: unknown[] = [
  { type: 'welcome', sessionId: 's', heartbeatMs: 15000, resume: [{ taskId: 'T-1', fromSeq: 3 }] },
  {
    type: 'task',
    taskId: 'T-2',
    script: { syntax: 'bash', body: 'echo hi' },
    variables: [{ name: 'A', value: 'b', sensitive: true }],
    container: { image: 'x', feed: { username: 'u', password: 'p' }, pullPolicy: 'never' },
    packages: [{ name: 'p.tgz', sha256: 'a'.repeat(64), size: 3 }],
    timeoutMs: 1000,
  },
  { type: 'ack', taskId: 'T-1', seq: 4 },
  { type: 'cancel', taskId: 'T-1' },
  { type: 'blob-begin', transfer: 1, sha256: 'b'.repeat(64), size: 10 },
  {
    type: 'event',
    taskId: 'T-1',
    seq: 1,
    time: 't',
    kind: 'log',
    stream: 'stdout',
    level: 'info',
    lines: ['a'],
  },
  {
    type: 'hello',
    protocol: 1,
    agent: { id: 'a', name: 'n', version: '1' },
    capacity: 1,
    capabilities: { docker: null, hostExecution: true, shells: ['sh'] },
  },
];

const ODD_VALUES: unknown[] = [
  null,
  true,
  -1,
  0,
  1.5,
  2 ** 53,
  '',
  'x'.repeat(100_000),
  [],
  {},
  [[[[[]]]]],
  { type: 'task' },
  '\u0000',
  '\ud800',
  'é',
  Number.MAX_VALUE,
];

/** A small deterministic generator (mulberry32), so a failing case can be replayed by its seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(value: unknown, next: () => number, depth = 0): unknown {
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(next() * items.length)];
  if (next() < 0.15 || depth > 4) return pick(ODD_VALUES);
  if (Array.isArray(value)) return value.map((item) => mutate(item, next, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (next() < 0.1) continue; // drop a field
      out[key] = next() < 0.5 ? mutate(item, next, depth + 1) : item;
    }
    if (next() < 0.1)
      out[pick(['extra', 'type', 'taskId', '__proto__']) ?? 'extra'] = pick(ODD_VALUES);
    return out;
  }
  return value;
}

function deeplyNested(levels: number): string {
  return `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

describe('codec fuzzing', () => {
  it('answers every mutated message with a decoded value or its own error', () => {
    const deadline = Date.now() + 4000;
    let cases = 0;
    for (let seed = 1; seed <= 20_000 && Date.now() < deadline; seed++) {
      const next = random(seed);
      const base = VALID[Math.floor(next() * VALID.length)];
      const text =
        next() < 0.1
          ? JSON.stringify(base).slice(0, Math.floor(next() * 80))
          : JSON.stringify(mutate(base, next));
      for (const decode of [decodeServerMessage, decodeAgentMessage]) {
        try {
          decode(text);
        } catch (error) {
          assert.ok(
            error instanceof CuttleError,
            `seed ${seed}: ${String(error)} for ${text.slice(0, 200)}`,
          );
        }
      }
      cases += 1;
    }
    assert.ok(cases > 1000, `only ${cases} cases ran`);
  });

  it('survives deep nesting, invalid UTF-8 and huge strings', () => {
    const inputs = [
      deeplyNested(10_000),
      Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString('utf8'),
      JSON.stringify({
        type: 'task',
        taskId: 'T',
        script: { syntax: 'sh', body: 'x'.repeat(2_000_000) },
      }),
      JSON.stringify({ type: 'x'.repeat(1_000_000) }),
    ];
    for (const text of inputs) {
      for (const decode of [decodeServerMessage, decodeAgentMessage]) {
        try {
          decode(text);
        } catch (error) {
          assert.ok(error instanceof CuttleError, String(error));
        }
      }
    }
  });
});
