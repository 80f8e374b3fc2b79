import type { BatchBuffer } from '../../src/batch.js';

/** What a sink does with a closed buffer: takes every batch until it is finished, handing each on after `each` saw its frames. */
export async function takeToEnd(buffer: BatchBuffer, each: (frames: Buffer) => void): Promise<void> {
  for (;;) {
    const b = buffer.take();
    if (!b) {
      if (buffer.finished) return;
      await buffer.waitForData();
      continue;
    }
    each(b.frames);
    buffer.handedOn(b);
  }
}
