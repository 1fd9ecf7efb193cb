import type { RawData } from 'ws';

/** A WebSocket message's data as one Buffer, whichever of ws's forms it arrived in. */
export function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
