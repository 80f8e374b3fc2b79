/** `start`: where the line began, relative to the start of the chunk pushed (negative: in an earlier one), or to the end of the last one for flush. */
export type OnLine = (line: Buffer, originalLength: number, start: number) => void;

const EMPTY = Buffer.alloc(0);
/** A carry grown past this for a long line is dropped once the line is out. */
const KEEP_CARRY_BYTES = 64 * 1024;

/**
 * Splits a byte stream into lines on LF, on Buffers (never strings: offsets are byte offsets and
 * bytes that are not UTF-8 pass unchanged). A trailing CR is stripped and empty lines are skipped.
 * A line longer than `maxLineBytes` is kept to that length (the rest is counted, not held), so
 * memory stays bounded whatever the input.
 */
export class LineSplitter {
  /**
   * The start of a line that has no LF yet, kept across chunks in one buffer of this splitter's own.
   * A copy per chunk (its last line is nearly always cut by the read) came from Node's pool of small
   * buffers: those pools outlived two young collections, died in the old generation, and piled up
   * there until a full collection (3.2 MB of them at the peak of a 500 MB run; docs/design.md).
   */
  private carry = EMPTY;
  private carried = 0;
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
   * A line is valid only during its `onLine` call: callers copy what they keep.
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
        this.emit(this.carry.subarray(0, this.carried), this.pendingLen, onLine, began);
        this.reset();
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
    if (this.pendingLen > 0) this.emit(this.carry.subarray(0, this.carried), this.pendingLen, onLine, -this.pendingLen);
    this.reset();
  }

  reset(): void {
    this.carried = 0;
    this.pendingLen = 0;
    if (this.carry.length > KEEP_CARRY_BYTES) this.carry = EMPTY;
  }

  private hold(chunk: Buffer, start: number, end: number): void {
    this.pendingLen += end - start;
    const take = Math.min(this.maxLineBytes - this.carried, end - start);
    if (take <= 0) return;
    const need = this.carried + take;
    if (need > this.carry.length) {
      // Doubled up to --max-line-bytes: a long line costs a few copies, not one per chunk.
      const grown = Buffer.allocUnsafeSlow(Math.min(this.maxLineBytes, Math.max(need, 2 * this.carry.length, 4096)));
      this.carry.copy(grown, 0, 0, this.carried);
      this.carry = grown;
    }
    // Copied: the chunk may be a reused read buffer.
    chunk.copy(this.carry, this.carried, start, start + take);
    this.carried = need;
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
