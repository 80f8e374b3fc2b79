import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { FINGERPRINT_BYTES, fingerprintOf, type FileIdentity } from '../../state/file-identity.js';
import type { LineBatcher } from '../line-batcher.js';

/** One open file: what it is, how far it was read, and the partial line read from it. */
export interface Reader {
  fh: FileHandle;
  id: FileIdentity;
  /** The bytes `id` is fingerprinted on; grows with what is read until FINGERPRINT_BYTES. */
  head: Buffer;
  path: string;
  /** Next byte to read. */
  pos: number;
  /** Where the lines of the next batch start (the end of the last one pushed). */
  batchStart: number;
  batcher: LineBatcher;
  /** A rotated file (found at start, or renamed away): read to its end, then finished. */
  rotated: boolean;
  lastGrowth: number;
  /** The last bytes read were text, not a NUL hole: a hole starting here cut into content we read. */
  afterText?: boolean;
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
