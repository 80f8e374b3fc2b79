/**
 * Helpers for the internal wire form: RFC 6587 octet-counted frames, "LEN SP MSG" back to back.
 */

/** The index after the frame whose header starts at `i` (a header cut off at the end of `frames` ends there). */
export function frameEnd(frames: Uint8Array, i: number): number {
  let len = 0;
  while (i < frames.length && frames[i] !== 0x20) len = len * 10 + frames[i++] - 0x30;
  return i + 1 + len;
}

/**
 * How far `data` is whole octet-counted frames (`LEN SP` then LEN bytes), and how many: for bytes
 * read back from a file, which a crash or another program may have cut or changed (the helpers
 * around it trust their input).
 */
export function wholeFrames(data: Buffer): { end: number; count: number } {
  let i = 0;
  let count = 0;
  while (i < data.length) {
    let j = i;
    let len = 0;
    while (j < data.length && j - i < 10 && data[j] >= 0x30 && data[j] <= 0x39) len = len * 10 + data[j++] - 0x30;
    if (j === i || data[j] !== 0x20 || j + 1 + len > data.length) break;
    i = j + 1 + len;
    count++;
  }
  return { end: i, count };
}

/** Calls `fn(start, end)` for each frame's MSG in `frames`. */
export function forEachFrame(frames: Buffer, fn: (start: number, end: number) => void): number {
  let i = 0;
  let count = 0;
  while (i < frames.length) {
    let len = 0;
    while (frames[i] !== 0x20) {
      len = len * 10 + (frames[i] - 0x30);
      i++;
    }
    i++;
    fn(i, i + len);
    i += len;
    count++;
  }
  return count;
}

/** Re-frames octet-counted frames as LF-terminated messages (RFC 6587 non-transparent framing). */
export function octetToLf(frames: Buffer): Buffer {
  const out = Buffer.allocUnsafe(frames.length);
  let o = 0;
  forEachFrame(frames, (start, end) => {
    o += frames.copy(out, o, start, end);
    out[o++] = 0x0a;
  });
  return out.subarray(0, o);
}
