/** `start`: where the line began, relative to the start of the chunk pushed (negative: in an earlier one), or to the end of the last one for flush. */
export type OnLine = (line: Buffer, originalLength: number, start: number) => void;

/**
 * Splits a byte stream into lines on LF, on Buffers (never strings: offsets are byte offsets and
 * bytes that are not UTF-8 pass unchanged). A trailing CR is stripped and empty lines are skipped.
 * A line longer than `maxLineBytes` is kept to that length (the rest is counted, not held), so
 * memory stays bounded whatever the input.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Length of the pending line, including what was cut off. */
  private pendingLen = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** Bytes held for a line that has no LF yet. */
  get pending(): number {
    return this.pendingLen;
  }

  /**
   * Emits every complete line of `chunk`. Returns how many bytes of `chunk` are consumed up to and
   * including its last LF (0 when it has none): the caller's commit position moves by that much.
   */
  push(chunk: Buffer, onLine: OnLine): number {
    let start = 0;
    let lf = chunk.indexOf(0x0a, 0);
    if (lf === -1) {
      this.hold(chunk, 0, chunk.length);
      return 0;
    }
    while (lf !== -1) {
      if (this.pendingLen > 0) {
        const began = start - this.pendingLen;
        this.hold(chunk, start, lf);
        this.emit(this.joinPending(), this.pendingLen, onLine, began);
        this.parts = [];
        this.partsLen = 0;
        this.pendingLen = 0;
      } else {
        const len = lf - start;
        this.emit(len > this.maxLineBytes ? chunk.subarray(start, start + this.maxLineBytes) : chunk.subarray(start, lf), len, onLine, start);
      }
      start = lf + 1;
      lf = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) this.hold(chunk, start, chunk.length);
    return start;
  }

  /** Emits a last line that has no LF (end of stdin). */
  flush(onLine: OnLine): void {
    if (this.pendingLen > 0) this.emit(this.joinPending(), this.pendingLen, onLine, -this.pendingLen);
    this.reset();
  }

  reset(): void {
    this.parts = [];
    this.partsLen = 0;
    this.pendingLen = 0;
  }

  private hold(chunk: Buffer, start: number, end: number): void {
    this.pendingLen += end - start;
    const room = this.maxLineBytes - this.partsLen;
    if (room <= 0) return;
    const take = Math.min(room, end - start);
    // Copy: the chunk may be a reused read buffer.
    this.parts.push(Buffer.from(chunk.subarray(start, start + take)));
    this.partsLen += take;
  }

  private joinPending(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partsLen);
  }

  private emit(line: Buffer, originalLength: number, onLine: OnLine, start: number): void {
    let len = line.length;
    let orig = originalLength;
    if (orig === len && len > 0 && line[len - 1] === 0x0d) {
      len--;
      orig--;
    }
    if (orig === 0) return;
    onLine(len === line.length ? line : line.subarray(0, len), orig, start);
  }
}
