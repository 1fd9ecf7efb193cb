const PT_INTERP = 3;

/**
 * True when `binary` is an ELF executable without a PT_INTERP program header, i.e. it needs no
 * dynamic loader and can run alone in a `FROM scratch` image.
 */
export function isStaticElf(binary: Buffer): boolean {
  if (binary.length < 64 || binary.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = binary[4] === 2;
  const littleEndian = binary[5] === 1;
  const u16 = (at: number): number =>
    littleEndian ? binary.readUInt16LE(at) : binary.readUInt16BE(at);
  const u32 = (at: number): number =>
    littleEndian ? binary.readUInt32LE(at) : binary.readUInt32BE(at);
  const u64 = (at: number): number =>
    Number(littleEndian ? binary.readBigUInt64LE(at) : binary.readBigUInt64BE(at));
  const programHeaders = is64 ? u64(0x20) : u32(0x1c);
  const entrySize = u16(is64 ? 0x36 : 0x2a);
  const count = u16(is64 ? 0x38 : 0x2c);
  for (let index = 0; index < count; index += 1) {
    const at = programHeaders + index * entrySize;
    if (at + 4 > binary.length) return false;
    if (u32(at) === PT_INTERP) return false;
  }
  return true;
}
