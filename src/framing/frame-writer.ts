/**
 * A growable byte builder. Frames for a whole batch are written into one Buffer so that the sink
 * does one write per batch instead of one per line.
 */
export class FrameWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initialSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.len;
  }

  private ensure(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  bytes(src: Buffer, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    src.copy(this.buf, this.len, start, end);
    this.len += n;
  }

  /** ASCII only: callers pass text that is already restricted to PRINTUSASCII. */
  ascii(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  utf8(s: string): void {
    const n = Buffer.byteLength(s);
    this.ensure(n);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  decimal(n: number): void {
    this.ascii(String(n));
  }

  /** Hands out what was written and starts over with a fresh buffer. */
  take(): Buffer {
    // A mostly empty backing store would make the memory budget lie: copy to an exact fit.
    const out =
      this.len * 2 < this.buf.length ? Buffer.from(this.buf.subarray(0, this.len)) : this.buf.subarray(0, this.len);
    this.buf = Buffer.allocUnsafe(Math.max(64 * 1024, Math.min(this.buf.length, 4 * 1024 * 1024)));
    this.len = 0;
    return out;
  }
}
