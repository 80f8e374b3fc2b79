import type { MessageKeys } from '../../batch.js';
import { crc32 } from './crc32.js';

/**
 * One spilled batch on disk:
 *
 *   u32 magic "AFSP" | u32 body length | u32 CRC-32 of the body | body
 *   body = u32 message count | u16 flags and origin length | [u32 u32 batch id] | [u32 keys length]
 *          | origin (JSON) | [keys (JSON)] | frames
 *
 * The top bit of the u16 says a batch id follows (records of older versions have none: they get a
 * fresh id when read); the next bit says message keys follow (Batch.keys: what a de-duplicating
 * sink names each message by, which must be the same after a restart as before it).
 * The magic lets a reader find the next record after a damaged one; the length and checksum tell a
 * torn tail (the record runs past the end of the file) from flipped bytes.
 */
export const MAGIC = 0x41465350;
export const HEADER_BYTES = 12;
/** Larger than any batch a source makes (a 64 MiB line plus its header); anything bigger is damage. */
export const MAX_BODY_BYTES = 80 * 1024 * 1024;
const MAGIC_BYTES = Buffer.from([0x41, 0x46, 0x53, 0x50]);

/** Where a batch's lines came from, so that a drop can say which bytes of which file it lost. */
export interface Origin {
  source: string;
  start: number;
  end: number;
}

export interface DecodedRecord {
  frames: Buffer;
  count: number;
  origin: Origin | undefined;
  id: number | undefined;
  keys?: MessageKeys;
}

const HAS_ID = 0x8000;
const HAS_KEYS = 0x4000;
const ID_BYTES = 8;
const KEYS_LEN_BYTES = 4;

/**
 * The record as two parts, header and the frames themselves, for one vectored write: copying every
 * batch into a record-sized buffer would double the garbage the spill makes at full speed.
 */
export function encodeRecordParts(frames: Buffer, count: number, origin: Origin | undefined, id: number | undefined, keys?: MessageKeys): [Buffer, Buffer] {
  const o = origin ? Buffer.from(JSON.stringify([origin.source, origin.start, origin.end])) : Buffer.alloc(0);
  const k = keys ? Buffer.from(JSON.stringify([keys.prefix, keys.offsets])) : Buffer.alloc(0);
  // Keys are only written with an id: a record of an older version has neither.
  const withId = id !== undefined;
  const withKeys = withId && keys !== undefined;
  const fixed = 6 + (withId ? ID_BYTES : 0) + (withKeys ? KEYS_LEN_BYTES : 0);
  const head = Buffer.allocUnsafe(HEADER_BYTES + fixed + o.length + k.length);
  head.writeUInt32BE(MAGIC, 0);
  head.writeUInt32BE(fixed + o.length + k.length + frames.length, 4);
  head.writeUInt32BE(count, HEADER_BYTES);
  head.writeUInt16BE(o.length | (withId ? HAS_ID : 0) | (withKeys ? HAS_KEYS : 0), HEADER_BYTES + 4);
  if (withId) {
    head.writeUInt32BE(Math.floor(id / 2 ** 32), HEADER_BYTES + 6);
    head.writeUInt32BE(id >>> 0, HEADER_BYTES + 10);
  }
  if (withKeys) head.writeUInt32BE(k.length, HEADER_BYTES + 6 + ID_BYTES);
  o.copy(head, HEADER_BYTES + fixed);
  if (withKeys) k.copy(head, HEADER_BYTES + fixed + o.length);
  head.writeUInt32BE(crc32(frames, crc32(head.subarray(HEADER_BYTES))), 8);
  return [head, frames];
}

/** `id` undefined writes a record as versions before batch ids did. */
export function encodeRecord(frames: Buffer, count: number, origin: Origin | undefined, id: number | undefined, keys?: MessageKeys): Buffer {
  return Buffer.concat(encodeRecordParts(frames, count, origin, id, keys));
}

export type Parsed =
  | { kind: 'record'; record: DecodedRecord; next: number }
  /** The header or body goes past the end of `buf`: `need` bytes from `at` would hold it. */
  | { kind: 'short'; need: number }
  | { kind: 'bad'; reason: string };

/** Reads the record at `at` in `buf` (a window of the file that starts at a record boundary). */
export function parseRecord(buf: Buffer, at: number): Parsed {
  if (buf.length - at < HEADER_BYTES) {
    const n = Math.min(MAGIC_BYTES.length, buf.length - at);
    if (n > 0 && !MAGIC_BYTES.subarray(0, n).equals(buf.subarray(at, at + n))) return { kind: 'bad', reason: 'bad magic' };
    return { kind: 'short', need: HEADER_BYTES };
  }
  if (buf.readUInt32BE(at) !== MAGIC) return { kind: 'bad', reason: 'bad magic' };
  const bodyLen = buf.readUInt32BE(at + 4);
  if (bodyLen < 6 || bodyLen > MAX_BODY_BYTES) return { kind: 'bad', reason: `impossible length ${bodyLen}` };
  if (buf.length - at < HEADER_BYTES + bodyLen) return { kind: 'short', need: HEADER_BYTES + bodyLen };
  const body = buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + bodyLen);
  if (crc32(body) !== buf.readUInt32BE(at + 8)) return { kind: 'bad', reason: 'checksum mismatch' };
  const count = body.readUInt32BE(0);
  const flags = body.readUInt16BE(4);
  const oLen = flags & ~(HAS_ID | HAS_KEYS);
  const withKeys = (flags & HAS_KEYS) !== 0 && (flags & HAS_ID) !== 0;
  const fixed = 6 + (flags & HAS_ID ? ID_BYTES : 0) + (withKeys ? KEYS_LEN_BYTES : 0);
  if (fixed > bodyLen) return { kind: 'bad', reason: 'bad origin length' };
  const kLen = withKeys ? body.readUInt32BE(6 + ID_BYTES) : 0;
  if (fixed + oLen + kLen > bodyLen) return { kind: 'bad', reason: 'bad origin length' };
  const id = flags & HAS_ID ? body.readUInt32BE(6) * 2 ** 32 + body.readUInt32BE(10) : undefined;
  let origin: Origin | undefined;
  if (oLen > 0) {
    try {
      const [source, start, end] = JSON.parse(body.subarray(fixed, fixed + oLen).toString()) as [string, number, number];
      origin = { source, start, end };
    } catch {
      return { kind: 'bad', reason: 'bad origin' };
    }
  }
  let keys: MessageKeys | undefined;
  if (withKeys) {
    try {
      const [prefix, offsets] = JSON.parse(body.subarray(fixed + oLen, fixed + oLen + kLen).toString()) as [string, number[]];
      keys = { prefix, offsets };
    } catch {
      return { kind: 'bad', reason: 'bad keys' };
    }
  }
  return { kind: 'record', record: { frames: body.subarray(fixed + oLen + kLen), count, origin, id, ...(keys && { keys }) }, next: at + HEADER_BYTES + bodyLen };
}

/** The next offset after `from` where a record's magic appears, or -1. */
export function findMagic(buf: Buffer, from: number): number {
  return buf.indexOf(MAGIC_BYTES, from);
}
