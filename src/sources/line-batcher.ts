import { sharedFrameWriter } from '../framing/frame-writer.js';
import { LineSplitter, type OnLine } from '../transforms/lines.js';
import type { Encoder } from '../transforms/encoder.js';

export interface Chunk {
  frames: Buffer;
  /** Messages in `frames`. */
  count: number;
  /** Complete lines seen, filtered or not. */
  lines: number;
  /** Bytes of the input consumed through its last LF: the commit position moves by this much. */
  consumed: number;
  /** Lets `frames`' memory be reused: call once the batch was handed on (optional, see FrameWriter). */
  release?: () => void;
  /** Batch.memory: what `frames` keep from reuse until released. */
  memory?: number;
  /** With `at` given: each message's line, as the byte offset where it starts in the input. */
  offsets?: number[];
  /** With `markEvery`: frame boundaries in `frames` (`bytes`) and the input consumed up to each. */
  marks?: { bytes: number[]; consumed: number[] };
}

/** Bytes in, framed messages out: line splitting, then the encoder, into one buffer per chunk. */
export class LineBatcher {
  private readonly splitter: LineSplitter;
  private readonly out = sharedFrameWriter();

  constructor(
    private readonly encoder: Encoder,
    maxLineBytes: number,
  ) {
    this.splitter = new LineSplitter(maxLineBytes);
  }

  /** Bytes held for a line with no LF yet. */
  get pending(): number {
    return this.splitter.pending;
  }

  /**
   * `at`: the input's offset in its file, when each message's line offset is wanted (Chunk.offsets).
   * `markEvery`: the input is split in pieces of that many bytes, and the frames' length and the
   * input consumed after each piece are marked (Chunk.marks): positions inside the one batch.
   */
  process(input: Buffer, at?: number, markEvery?: number): Chunk {
    if (!markEvery || input.length <= markEvery) return this.batch((onLine) => this.splitter.push(input, onLine), at);
    const marks = { bytes: [] as number[], consumed: [] as number[] };
    const chunk = this.batch((onLine) => {
      let consumed = 0;
      for (let off = 0; off < input.length; off += markEvery) {
        const n = this.splitter.push(input.subarray(off, off + markEvery), (line, orig, start) => onLine(line, orig, start + off));
        if (n === 0) continue;
        consumed = off + n;
        const bytes = this.out.length;
        // A piece is worth a mark only if frames were made since the last one and more input follows.
        if (off + markEvery < input.length && bytes > (marks.bytes[marks.bytes.length - 1] ?? 0)) {
          marks.bytes.push(bytes);
          marks.consumed.push(consumed);
        }
      }
      return consumed;
    }, at);
    // The last mark would be the batch's end: its own hand-on commits that.
    while (marks.bytes.length > 0 && marks.bytes[marks.bytes.length - 1] >= chunk.frames.length) {
      marks.bytes.pop();
      marks.consumed.pop();
    }
    return marks.bytes.length > 0 ? { ...chunk, marks } : chunk;
  }

  /** At the end of a stream: the last line, even without its LF. `at`: the offset the input has reached. */
  flush(at?: number): Chunk {
    const before = this.splitter.pending;
    return this.batch((onLine) => {
      this.splitter.flush(onLine);
      return before;
    }, at);
  }

  /** Encodes the lines `split` yields into one batch; `split` returns the bytes it consumed. */
  private batch(split: (onLine: OnLine) => number, at: number | undefined): Chunk {
    this.out.discard();
    this.encoder.beginBatch();
    let count = 0;
    let lines = 0;
    const offsets: number[] | undefined = at === undefined ? undefined : [];
    const consumed = split((line, originalLength, start) => {
      lines++;
      const n = this.encoder.encode(this.out, line, originalLength);
      count += n;
      for (let i = 0; i < n; i++) offsets?.push(at! + start);
    });
    return { ...this.out.takeBatch(), count, lines, consumed, ...(offsets && { offsets }) };
  }

  /** Forget a partial line (the file it came from was truncated). */
  reset(): void {
    this.splitter.reset();
  }
}
