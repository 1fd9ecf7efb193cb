import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { writeMaskedBinaryFrame } from '../../protocol/masked-binary-frame.js';

/** Sends `payload` through the writer and returns the bytes it wrote. */
async function written(payload: Buffer): Promise<Buffer> {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await writeMaskedBinaryFrame(stream, payload);
  return Buffer.concat(chunks);
}

/** XOR with the 4-byte key, as the receiver unmasks. */
function unmask(data: Buffer, key: Buffer): Buffer {
  return Buffer.from(data.map((byte, i) => byte ^ (key[i & 3] ?? 0)));
}

describe('masked binary frames (RFC 6455 section 5.2)', () => {
  // The length's three encodings, each at its edges; the RFC requires the shortest.
  const cases: [length: number, lengthField: number, extendedBytes: number][] = [
    [0, 0, 0],
    [1, 1, 0],
    [125, 125, 0],
    [126, 126, 2],
    [127, 126, 2],
    [65_535, 126, 2],
    [65_536, 127, 8],
    [4 + 1024 * 1024, 127, 8],
  ];

  for (const [length, lengthField, extendedBytes] of cases) {
    it(`frames ${length} bytes: FIN, binary, masked, the shortest length, then the key`, async () => {
      const original = randomBytes(length);
      const payload = Buffer.from(original);
      const frame = await written(payload);
      const headerBytes = 2 + extendedBytes + 4;
      assert.equal(frame.length, headerBytes + length);
      assert.equal(frame[0], 0x82, 'FIN set, no RSV bits, opcode 2 (binary)');
      assert.equal(frame[1], 0x80 | lengthField, 'MASK set and the 7-bit length field');
      if (extendedBytes === 2) assert.equal(frame.readUInt16BE(2), length);
      if (extendedBytes === 8) assert.equal(frame.readBigUInt64BE(2), BigInt(length));
      const key = frame.subarray(2 + extendedBytes, headerBytes);
      const unmasked = unmask(frame.subarray(headerBytes), key);
      assert.ok(unmasked.equals(original), 'the payload is the original XOR the key');
      // Masked where it lay: the caller's buffer holds exactly what went out.
      assert.ok(payload.equals(frame.subarray(headerBytes)));
    });
  }

  it('masks a payload that starts at an odd offset of its buffer', async () => {
    const backing = randomBytes(1 + 1000);
    const original = Buffer.from(backing.subarray(1));
    const frame = await written(backing.subarray(1));
    assert.ok(unmask(frame.subarray(8), frame.subarray(4, 8)).equals(original));
  });

  it('takes a fresh key for every frame', async () => {
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i += 1) {
      const frame = await written(Buffer.alloc(8));
      keys.add(frame.subarray(2, 6).toString('hex'));
    }
    // 3,000 random 32-bit keys: a repeat is possible (p ≈ 0.1%), two are not plausible.
    assert.ok(keys.size >= 2998, `${keys.size} distinct keys`);
  });
});
