import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
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

/** Below this many bytes, a fingerprint alone is too weak to call two files the same (audit lines all begin alike). */
export const MIN_CONTENT_MATCH = 64;

/**
 * Whether a checkpoint's offset holds in a file that begins with the bytes it was fingerprinted on
 * (`before`: that file's byte just before the offset; `size`: its size). A file read while shorter
 * than MIN_CONTENT_MATCH is known by those few bytes only, and the offset lies within them. At the
 * end of a line (or of a NUL hole) they are that line, as unique as lines are; inside a line (the
 * unterminated last line of a finished file, handed on as it was) they are the first bytes of
 * whatever line another file (a reused inode number, a backup made since) begins with. Such an
 * offset holds only where nothing follows it; otherwise the file is read from its start: the
 * fragment at worst is sent again, never a line lost.
 */
export function offsetHolds(c: { fpLen: number; offset: number }, before: number | undefined, size: number): boolean {
  if (c.offset === 0 || c.fpLen >= MIN_CONTENT_MATCH || size <= c.offset) return true;
  return before === 0x0a || before === 0;
}

/**
 * Whether the open file (of `size` bytes) is the one a checkpoint knows, its first bytes, and the
 * checkpoint's offset holds in it (offsetHolds).
 */
export async function resumable(fh: PositionalReader, c: { fpLen: number; fp: string; offset: number }, size: number): Promise<boolean> {
  if (c.fpLen > size || c.offset > size) return false;
  const head = Buffer.alloc(c.fpLen);
  if (c.fpLen > 0 && (await fh.read(head, 0, c.fpLen, 0)).bytesRead < c.fpLen) return false;
  if (fingerprintOf(head) !== c.fp) return false;
  // The byte before a weak checkpoint's offset is among the bytes just read (offset <= fpLen).
  const before = c.offset > 0 && c.offset <= head.length ? head[c.offset - 1] : undefined;
  return offsetHolds(c, before, size);
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
 * every read, so it neither allocates nor hashes. Read synchronously from an open file (a page the
 * reads keep in the cache): through the thread pool it cost as much as the 512 KiB read before it.
 */
export async function sameContent(fh: PositionalReader, head: Buffer, scratch: Buffer): Promise<boolean> {
  if (head.length === 0) return true;
  const fd = fdOf(fh);
  const bytesRead = fd !== undefined ? readSync(fd, scratch, 0, head.length, 0) : (await fh.read(scratch, 0, head.length, 0)).bytesRead;
  return bytesRead === head.length && scratch.subarray(0, bytesRead).equals(head);
}

/** The descriptor of an open file, for the synchronous calls that save a thread-pool round trip; undefined for other readers (tests' fakes). */
export function fdOf(fh: PositionalReader): number | undefined {
  const fd = (fh as { fd?: unknown }).fd;
  return typeof fd === 'number' ? fd : undefined;
}
