import { sharedFrameWriter } from '../framing/frame-writer.js';
import { LineSplitter } from '../transforms/lines.js';
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

  process(input: Buffer): Chunk {
    return this.batch((onLine) => this.splitter.push(input, onLine));
  }

  /** At the end of a stream: the last line, even without its LF. */
  flush(): Chunk {
    const before = this.splitter.pending;
    return this.batch((onLine) => {
      this.splitter.flush(onLine);
      return before;
    });
  }

  /** Encodes the lines `split` yields into one batch; `split` returns the bytes it consumed. */
  private batch(split: (onLine: (line: Buffer, originalLength: number) => void) => number): Chunk {
    this.out.discard();
    this.encoder.beginBatch();
    let count = 0;
    let lines = 0;
    const consumed = split((line, originalLength) => {
      lines++;
      count += this.encoder.encode(this.out, line, originalLength);
    });
    return { ...this.out.takeBatch(), count, lines, consumed };
  }

  /** Forget a partial line (the file it came from was truncated). */
  reset(): void {
    this.splitter.reset();
  }
}
