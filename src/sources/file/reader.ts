import { createHash } from 'node:crypto';
import { FINGERPRINT_BYTES, fingerprintOf, type FileIdentity } from '../../state/file-identity.js';
import type { LineBatcher } from '../line-batcher.js';
import type { ReadableFile } from './gzip-file.js';

/** One open file: what it is, how far it was read, and the partial line read from it. */
export interface Reader {
  fh: ReadableFile;
  id: FileIdentity;
  /** The bytes `id` is fingerprinted on; grows with what is read until FINGERPRINT_BYTES. */
  head: Buffer;
  path: string;
  /** Next byte to read. */
  pos: number;
  /** The largest size seen: saved with each position, what a deletion leaves unread. */
  size: number;
  /** The last bytes before `pos` (up to TAIL_BYTES): saved, hashed, with each position. */
  tail: Buffer;
  /** Where the lines of the next batch start (the end of the last one pushed). */
  batchStart: number;
  batcher: LineBatcher;
  /** A rotated file (found at start, or renamed away): read to its end, then finished. */
  rotated: boolean;
  lastGrowth: number;
  /** The last bytes read were text, not a NUL hole: a hole starting here cut into content we read. */
  afterText?: boolean;
  /** The tailer's catchingUp: bytes of the file after `pos` when last measured, when, and the verdict then. */
  unread?: { bytes: number; at: number; notGrowing: boolean };
}

/**
 * How many bytes before a saved offset are hashed with it: files that begin alike (a NUL hole left by
 * copytruncate under lumberjack is 1 KiB of zeros) are told apart where the reading stopped.
 */
export const TAIL_BYTES = 32;

/** The last TAIL_BYTES of `prev` followed by `data`. */
export function lastBytes(prev: Buffer, data: Buffer): Buffer {
  if (data.length >= TAIL_BYTES) return Buffer.from(data.subarray(data.length - TAIL_BYTES));
  const both = Buffer.concat([prev, data]);
  return both.subarray(Math.max(0, both.length - TAIL_BYTES));
}

/**
 * A file opened short is fingerprinted on more of its bytes as they are read, from the bytes just
 * read (not read again: by then a copytruncate may have put other bytes there). So a committed
 * offset is always covered by the fingerprint up to FINGERPRINT_BYTES, and a file truncated and
 * refilled while we were away is not taken for the one we knew.
 */
export function extendIdentity(r: Reader, start: number, data: Buffer): void {
  const bytesRead = data.length;
  const have = r.head.length;
  if (have >= FINGERPRINT_BYTES || start > have || start + bytesRead <= have) return;
  const more = data.subarray(have - start, Math.min(bytesRead, FINGERPRINT_BYTES - start));
  r.head = Buffer.concat([r.head, more]);
  r.id = { ...r.id, fpLen: r.head.length, fp: fingerprintOf(r.head) };
}

/**
 * What the keys of a file's messages start with (Batch.keys; the line's offset follows): device,
 * inode and a hash of the file's first line (up to FINGERPRINT_BYTES). Unlike `id.fp` it does not
 * grow as the file does, so a line gets the same key before and after a restart; the first line is
 * always read by the time any line is sent. A reused inode with other content gets other keys.
 */
export function keyPrefix(r: Reader): string {
  const lf = r.head.indexOf(0x0a);
  const first = lf >= 0 ? r.head.subarray(0, lf) : r.head;
  return `${r.id.dev}:${r.id.ino}:${createHash('sha256').update(first).digest('base64url').slice(0, 16)}:`;
}
