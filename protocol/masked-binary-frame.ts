/**
 * Writes a binary WebSocket message from a client as one frame, masking its payload in place.
 *
 * `ws` masks a Buffer it is given into a fresh copy (it may not change the caller's bytes): for a
 * blob that is a 1 MiB allocation per frame, ~1,000 per GiB of artifact, and the agent's V8 ran a
 * full collection every ~100 of them for the external memory (docs/performance.md, round 12). The
 * blob sender reads each frame into one of two buffers it reuses, so it can let its bytes be
 * masked where they lie and spare the copy.
 *
 * The frame goes to the socket underneath `ws`. That keeps the order of frames because `ws` writes
 * each of its own frames to that socket synchronously, as long as it never compresses and never
 * sends a Blob (it queues frames only then); the agent's connection does neither
 * (perMessageDeflate is off), and AgentConnection checks that `ws` holds nothing queued before each
 * frame. Every frame is a whole message (FIN set): the agent never sends fragmented messages, and
 * a frame written between the fragments of one would break RFC 6455. Tests send both kinds
 * interleaved and check their order, and check each header byte for byte. Why this and not
 * another way: docs/decisions/0002-blob-frames-beneath-ws.md.
 */
import { randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { CuttleError } from './errors.js';

/** What this file uses of `bufferutil` (ws's native helper; it ships no types). */
interface BufferUtil {
  /** Writes `source` XOR the 4-byte `mask` to `output` from `offset`; `source` may be `output`. */
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
}

/**
 * Required, as `ws` requires it. An `import` of this CommonJS package made Node start its
 * CommonJS export lexer, which is WebAssembly: +0.5 MiB for the idle agent (docs/performance.md).
 * Without its prebuilt binary the package loads a JavaScript fallback with the same functions.
 */
const bufferUtil = loadBufferUtil();

function loadBufferUtil(): BufferUtil {
  const loaded: unknown = createRequire(import.meta.url)('bufferutil');
  if (!isBufferUtil(loaded)) throw new CuttleError('internal', 'bufferutil has no mask function');
  return loaded;
}

function isBufferUtil(value: unknown): value is BufferUtil {
  return (
    typeof value === 'object' &&
    value !== null &&
    'mask' in value &&
    typeof value.mask === 'function'
  );
}

const OPCODE_BINARY_FIN = 0x82;
const MASK_BIT = 0x80;
/**
 * Frames `payload` as one masked binary message and writes it to `stream`. The payload is masked in
 * place: afterwards its bytes are no longer the message, and they must not change until the
 * returned promise settles (the socket writes from them). Rejects with the socket's error.
 */
export function writeMaskedBinaryFrame(stream: Duplex, payload: Buffer): Promise<void> {
  const header = frameHeader(payload.length);
  const key = header.subarray(header.length - 4);
  bufferUtil.mask(payload, key, payload, 0, payload.length);
  return new Promise((resolve, reject) => {
    stream.cork();
    try {
      stream.write(header);
      stream.write(payload, (error) => {
        if (error === undefined || error === null) resolve();
        else reject(error);
      });
    } finally {
      stream.uncork();
    }
  });
}

/**
 * RFC 6455 section 5.2: FIN and opcode; the length in the shortest of 7, 7+16 or 7+64 bits (the
 * RFC requires the shortest); the mask key, fresh from the system's CSPRNG (section 5.3).
 */
function frameHeader(length: number): Buffer {
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const header = Buffer.allocUnsafe(2 + lengthBytes + 4);
  header[0] = OPCODE_BINARY_FIN;
  if (lengthBytes === 0) {
    header[1] = MASK_BIT | length;
  } else if (lengthBytes === 2) {
    header[1] = MASK_BIT | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = MASK_BIT | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  randomFillSync(header, 2 + lengthBytes, 4);
  return header;
}
