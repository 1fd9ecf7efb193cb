/**
 * The part of `bufferutil` (ws's optional native helper, a dependency of this project) that
 * protocol/masked-binary-frame.ts uses. The package ships no types. Without its prebuilt binary it
 * loads a JavaScript fallback with the same functions.
 */
declare module 'bufferutil' {
  /** CommonJS, and its exports are set at run time: import it whole (default import). */
  const bufferUtil: {
    /** Writes `source` XOR the 4-byte `mask` to `output` from `offset`; `source` may be `output`. */
    mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  };
  export default bufferUtil;
}
