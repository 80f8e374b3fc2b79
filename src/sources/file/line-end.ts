import type { FileHandle } from 'node:fs/promises';

/** Where the last complete line ends, so that starting "at the end" never starts mid-line. */
export async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  // Only at a first start with --start-at end: a small buffer of its own, not one per followed file.
  const buf = Buffer.allocUnsafe(64 * 1024);
  let end = size;
  while (end > 0) {
    const len = Math.min(buf.length, end);
    const { bytesRead } = await fh.read(buf, 0, len, end - len);
    const lf = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (lf !== -1) return end - len + lf + 1;
    end -= len;
  }
  return 0;
}
