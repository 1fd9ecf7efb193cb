/**
 * A `log` event's `lines` as JSON bytes, made from the lines joined by '\n' without splitting
 * them: the busy log path's encoder. A WebAssembly function (lines-json.wat) copies 16 bytes at a
 * time, turns each line end into `","` and escapes what JSON escapes; text that is not ASCII is
 * left to JSON.stringify by the caller. V8's own JSON.stringify of the split lines, with the split,
 * was a third of the agent's main thread on busy logs (docs/performance.md, round 10).
 */
import { LINES_JSON_WASM } from './lines-json-wasm.js';

/** Longer text is left to JSON.stringify: a WebAssembly memory never shrinks. */
const MAX_TEXT_CHARS = 1024 * 1024;
const PAGE_BYTES = 64 * 1024;

type LinesJsonFunction = (input: number, length: number, output: number) => number;

interface LinesJsonModule {
  memory: WebAssembly.Memory;
  linesJson: LinesJsonFunction;
  /** How many line ends the last call found. */
  lineEnds: WebAssembly.Global;
  /** A Buffer over `memory`, made again when the memory grows (growing detaches the old one). */
  view: Buffer;
}

/** The module, once loaded; `null` when this runtime cannot run it (then JSON.stringify does). */
let loaded: LinesJsonModule | null | undefined;

function isLinesJson(value: unknown): value is LinesJsonFunction {
  return typeof value === 'function' && value.length === 3;
}

/**
 * Compiled on first use: an agent that never runs a busy step never pays for it. A runtime that
 * cannot run it (`node --jitless` has no WebAssembly; V8 refuses its SIMD on an x86-64 CPU without
 * SSE4.1, as some virtual CPU models are) leaves every batch to JSON.stringify.
 */
function load(): LinesJsonModule | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    const { exports } = new WebAssembly.Instance(
      new WebAssembly.Module(Buffer.from(LINES_JSON_WASM, 'base64')),
    );
    const { memory, linesJson, lineEnds } = exports;
    if (
      memory instanceof WebAssembly.Memory &&
      isLinesJson(linesJson) &&
      lineEnds instanceof WebAssembly.Global
    ) {
      loaded = { memory, linesJson, lineEnds, view: Buffer.from(memory.buffer) };
    }
  } catch {
    // No WebAssembly here, or no SIMD: `loaded` stays null.
  }
  return loaded;
}

/**
 * The UTF-8 bytes of `prefix + JSON.stringify(text.split('\n')) + suffix`, or undefined when a
 * line holds a character that is not ASCII, or the module cannot run here (then the caller splits
 * and uses JSON.stringify); `lines` is how many lines `text` holds. Never throws.
 */
export function linesJson(
  text: string,
  prefix: string,
  suffix: string,
): { bytes: Buffer; lines: number } | undefined {
  const length = text.length;
  if (length > MAX_TEXT_CHARS) return undefined;
  const encoder = load();
  if (encoder === null) return undefined;
  // The input at 0, the output after it (16-byte aligned), with room for every byte to be
  // escaped as \u00xx (6 bytes each) and for the last vector stored whole.
  const output = Math.ceil(length / 16) * 16;
  const needed = output + 6 * length + 16;
  if (encoder.view.length < needed) {
    try {
      encoder.memory.grow(Math.ceil((needed - encoder.view.length) / PAGE_BYTES));
    } catch {
      return undefined; // no memory for it now: JSON.stringify, which needs less
    }
    encoder.view = Buffer.from(encoder.memory.buffer);
  }
  // ASCII text is as many bytes as characters; anything else is caught here (fewer bytes fit) or
  // by the module (a byte of 128 or more).
  if (encoder.view.write(text, 0, length, 'utf8') !== length) return undefined;
  const encoded = encoder.linesJson(0, length, output);
  if (encoded < 0) return undefined;
  const prefixBytes = Buffer.byteLength(prefix);
  const bytes = Buffer.allocUnsafe(prefixBytes + encoded + 4 + Buffer.byteLength(suffix));
  bytes.write(prefix, 0);
  let at = prefixBytes;
  bytes[at++] = 0x5b; // [
  bytes[at++] = 0x22; // "
  at += encoder.view.copy(bytes, at, output, output + encoded);
  bytes[at++] = 0x22; // "
  bytes[at++] = 0x5d; // ]
  bytes.write(suffix, at);
  const lineEnds = encoder.lineEnds.value;
  return typeof lineEnds === 'number' ? { bytes, lines: lineEnds + 1 } : undefined;
}
