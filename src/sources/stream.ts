import type { Readable } from 'node:stream';
import type { BatchBuffer } from '../batch.js';
import type { Stats } from '../telemetry/stats.js';
import type { Encoder } from '../transforms/encoder.js';
import { LineBatcher, type Chunk } from './line-batcher.js';
import type { Source } from './source.js';

/** Standard input (or any stream): read only as fast as the buffer takes it; the last line needs no LF. */
export class StreamSource implements Source {
  private readonly batcher: LineBatcher;
  private stopped = false;
  /** Where the lines of the next batch start in the stream, and how much of it was read. */
  private offset = 0;
  private readBytes = 0;

  constructor(
    readonly name: string,
    private readonly input: Readable,
    encoder: Encoder,
    private readonly buffer: BatchBuffer,
    private readonly stats: Stats,
    maxLineBytes: number,
  ) {
    this.batcher = new LineBatcher(encoder, maxLineBytes);
  }

  async run(): Promise<void> {
    try {
      for await (const data of this.input) {
        this.readBytes += (data as Buffer).length;
        await this.emit(this.batcher.process(data as Buffer));
        if (this.stopped) return;
      }
    } catch (err) {
      if (this.stopped) return; // destroyed by stop()
      throw err;
    }
    await this.emit(this.batcher.flush());
  }

  stop(): void {
    this.stopped = true;
    this.input.destroy();
  }

  private async emit(chunk: Chunk): Promise<void> {
    if (chunk.lines > 0) this.stats.addLines(this.name, chunk.lines);
    // A line split across reads is consumed with the read that ends it: the end is what was read
    // less what waits for its LF.
    const end = this.readBytes - this.batcher.pending;
    const origin = { source: this.name, start: this.offset, end };
    this.offset = end;
    if (chunk.count > 0) await this.buffer.push({ frames: chunk.frames, count: chunk.count, origin, release: chunk.release, memory: chunk.memory });
  }
}
