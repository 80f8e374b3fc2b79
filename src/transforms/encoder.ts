import type { FrameWriter } from '../framing/frame-writer.js';
import type { Rfc5424Framer } from '../framing/rfc5424.js';
import type { Stats } from '../telemetry/stats.js';

/**
 * Turns one line into zero or more framed messages: the place where the transforms (k8s-audit
 * extraction, selectors, dedupe) plug in. `raw` does nothing but frame.
 */
export interface Encoder {
  /** Called before each run of lines read together. */
  beginBatch(): void;
  /** Returns how many messages were written to `out` (0 when the line is filtered out). */
  encode(out: FrameWriter, line: Buffer, originalLength: number): number;
  /**
   * Like encode, for a line whose JSON is already parsed (the webhook parsed the request): saves the
   * second parse. Encoders that do not look inside lines leave it out.
   */
  encodeParsed?(out: FrameWriter, value: object, line: Buffer): number;
}

export class RawEncoder implements Encoder {
  constructor(
    private readonly framer: Rfc5424Framer,
    private readonly stats: Stats,
  ) {}

  beginBatch(): void {
    this.framer.beginBatch();
  }

  encode(out: FrameWriter, line: Buffer, originalLength: number): number {
    if (this.framer.append(out, line, originalLength).truncated) this.stats.linesTruncated++;
    return 1;
  }
}

export type EncoderFactory = (appName: string) => Encoder;
