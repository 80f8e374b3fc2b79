import type { Writable } from 'node:stream';
import { octetToLf } from '../framing/octet.js';
import type { SinkStats } from '../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../batch.js';
import type { Framing } from './sink.js';

/**
 * The write loop of the plain syslog sinks (a socket, stdout): takes batches, writes each (as LF
 * frames when asked), and hands it on once the stream took its bytes, in order. Returns when the
 * buffer is finished or `stop` resolves (`stopped()` then says so). `inflight` holds the batches
 * written and not handed on yet, for the caller to requeue when the stream failed. `written` sees
 * each batch's frames once the stream took them, before the batch is handed on (and its memory
 * reused). `beforeTake` runs before each take: what must precede the next batch is written there.
 */
export async function writeBatches(
  out: Writable,
  buffer: BatchBuffer,
  framing: Framing,
  stats: SinkStats,
  stop: Promise<unknown>,
  stopped: () => boolean,
  hooks: { inflight?: Batch[]; written?: (frames: Buffer, count: number) => void; beforeTake?: () => void } = {},
): Promise<void> {
  const { inflight = [], written, beforeTake } = hooks;
  // A stop that rejects (the stream's error) is seen by the races below; unseen, it must not be an unhandled rejection.
  stop.catch(() => {});
  while (!stopped()) {
    beforeTake?.();
    const batch = buffer.take();
    if (!batch) {
      if (buffer.finished) return;
      await Promise.race([buffer.waitForData(), stop]);
      continue;
    }
    if (batch.frames.length === 0 && inflight.length === 0) {
      buffer.handedOn(batch);
      continue;
    }
    inflight.push(batch);
    const data = framing === 'lf' ? octetToLf(batch.frames) : batch.frames;
    const ok = out.write(data, (err) => {
      if (err || inflight[0] !== batch) return;
      inflight.shift();
      stats.messagesSent += batch.count;
      stats.bytesSent += data.length;
      stats.lastSendMs = Date.now();
      written?.(batch.frames, batch.count);
      buffer.handedOn(batch);
    });
    if (!ok) {
      buffer.backedUp?.(true);
      await Promise.race([new Promise((r) => out.once('drain', r)), stop]);
      buffer.backedUp?.(false);
    }
  }
}
