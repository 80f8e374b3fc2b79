import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/** How many leading bytes identify a file's content; inode numbers alone are reused. */
export const FINGERPRINT_BYTES = 1024;

/**
 * A file is device + inode + a hash of its first bytes. A file shorter than FINGERPRINT_BYTES is
 * fingerprinted on what it has (`fpLen`), so files of a few bytes are followed too.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  fpLen: number;
  fp: string;
}

/** Positional reads: an open file, or a .gz read as the file it was. */
export interface PositionalReader {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export function inodeKey(id: { dev: number; ino: number }): string {
  return `${id.dev}:${id.ino}`;
}

/**
 * Whether a fingerprint is of zeros only: a file beginning with a NUL hole (copytruncate under a
 * writer without O_APPEND). Every such file has it: it names no file by itself.
 */
export function isHoleFingerprint(id: { fpLen: number; fp: string }): boolean {
  return id.fpLen > 0 && id.fp === fingerprintOf(Buffer.alloc(id.fpLen));
}

export function fingerprintOf(head: Buffer): string {
  return head.length === 0 ? '' : createHash('sha256').update(head).digest('hex').slice(0, 32);
}

export async function fingerprint(fh: FileHandle, length: number): Promise<string> {
  if (length === 0) return '';
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, 0);
  if (bytesRead < length) return '!short';
  return fingerprintOf(buf);
}

/** The identity and the bytes it was fingerprinted on (a reader extends them as it reads on). */
export async function identifyWithHead(fh: FileHandle): Promise<{ id: FileIdentity; head: Buffer }> {
  const st = await fh.stat();
  const buf = Buffer.alloc(Math.min(st.size, FINGERPRINT_BYTES));
  const { bytesRead } = buf.length > 0 ? await fh.read(buf, 0, buf.length, 0) : { bytesRead: 0 };
  const head = buf.subarray(0, bytesRead);
  return { id: { dev: st.dev, ino: st.ino, fpLen: head.length, fp: fingerprintOf(head) }, head };
}

/**
 * Whether the open file still begins with `head`, the bytes it was identified by (copytruncate
 * changes that). Compared byte for byte in `scratch` (at least FINGERPRINT_BYTES): this runs after
 * every read, so it neither allocates nor hashes.
 */
export async function sameContent(fh: PositionalReader, head: Buffer, scratch: Buffer): Promise<boolean> {
  if (head.length === 0) return true;
  const { bytesRead } = await fh.read(scratch, 0, head.length, 0);
  return bytesRead === head.length && scratch.subarray(0, bytesRead).equals(head);
}
