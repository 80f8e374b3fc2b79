import * as zlib from 'node:zlib';

let table: Int32Array | undefined;

/** The table-driven CRC-32 (IEEE), for Node 20 releases older than 20.15 that lack zlib.crc32. */
function crc32Table(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  let crc = ~value;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/**
 * CRC-32 of `data`; pass the CRC of what came before as `value` to go on from it.
 * Empty data leaves `value` as it is: zlib.crc32 returns 0 for an empty view whose memory V8 has
 * moved off its heap (after a native write, or `.buffer`): its data pointer is NULL, which zlib takes
 * as "give the initial value". Empty batches (positions without lines) were written with checksum 0.
 */
export const crc32: (data: Uint8Array, value?: number) => number = native ? (d, v = 0) => (d.length === 0 ? v >>> 0 : native(d, v) >>> 0) : crc32Table;
export { crc32Table };
