import type { Writable } from 'node:stream';
import { octetToLf } from '../framing/octet.js';
import type { SinkStats } from '../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../batch.js';
import type { Framing } from './sink.js';
import { Latch } from './signal.js';
import { uptimeMs } from '../clock.js';

/**
 * For its first seconds (--careful-start) a following run writes every marked batch in pieces, each
 * committed as the kernel takes it, whatever the socket: a process just started is the likeliest to
 * be killed again (a crash loop: the OOM killer, a liveness probe), and it is catching up, so the
 * kernel takes whole 512 KiB batches at once. A kill inside such a write repeats the whole batch
 * (about 400 audit lines); in pieces, one piece (about 100). Pieces cost about +22% CPU per GB, for
 * these seconds only (docs/design.md, "kill -9 and duplicates").
 */
let carefulUntilMs = 0;
/** From now until `ms` after the process started (uptimeMs()), marked batches go in pieces. */
export function writeCarefullyUntil(ms: number): void {
  carefulUntilMs = ms;
}
const startingUp = (): boolean => uptimeMs() < carefulUntilMs;

/**
 * The write loop of the plain syslog sinks (a socket, stdout): takes batches, writes each (as LF
 * frames when asked), and hands it on once the stream took its bytes, in order. Returns when the
 * buffer is finished or `stop` resolves (`stopped()` then says so). `inflight` holds the batches
 * written and not handed on yet, for the caller to requeue when the stream failed. `written` sees
 * each batch's frames once the stream took them, before the batch is handed on (and its memory
 * reused). `beforeTake` runs before each take: what must precede the next batch is written there
 * (a promise: the loop waits for it, then checks again).
 * `careful` (default: the first seconds, above) writes marked batches in pieces too (tests set it).
 */
export async function writeBatches(
  out: Writable,
  buffer: BatchBuffer,
  framing: Framing,
  stats: SinkStats,
  stop: Promise<unknown>,
  stopped: () => boolean,
  hooks: { inflight?: Batch[]; written?: (frames: Buffer, count: number) => void; beforeTake?: () => void | Promise<void>; careful?: () => boolean } = {},
): Promise<void> {
  const { inflight = [], written, beforeTake, careful = startingUp } = hooks;
  // Raced at every wait, for as long as the stream lives. A stop that rejects (the stream's error)
  // is seen by the races below, never as an unhandled rejection.
  const until = new Latch(stop);
  // The last write was not all taken at once: the kernel's buffer is full (the drain is the limit),
  // and what it holds of a batch is delivered even if we die before the batch is handed on. Assumed
  // at first: a new connection meets a backlog (a restart catching up) more often than not.
  let backedUp = true;
  while (!stopped()) {
    const before = beforeTake?.();
    if (before) {
      await before;
      continue;
    }
    const batch = buffer.take();
    if (!batch) {
      if (buffer.finished) return;
      await until.race(buffer.waitForData(), undefined);
      continue;
    }
    if (batch.frames.length === 0 && inflight.length === 0) {
      buffer.handedOn(batch);
      continue;
    }
    inflight.push(batch);
    let data = framing === 'lf' ? octetToLf(batch.frames) : batch.frames;
    const size = data.length;
    // Marked pieces (octet framing: LF frames have other boundaries) go one at a time, each reported
    // when the stream took it, so that a kill -9 repeats at most the piece the kernel held part of.
    // Only while the stream is backed up, or `careful` (the first seconds of the process): a write
    // the kernel takes whole leaves nothing half-delivered unless the kill lands inside it, and
    // pieces cost CPU (+16-24% per GB when every batch went in pieces; +22% measured again with
    // pieces taken at once going on in the same tick). A buffer that cannot commit them (a pool
    // member's view) gets whole batches, as before.
    const marks = framing === 'lf' || !buffer.progress || !(backedUp || careful()) ? undefined : batch.marks?.bytes;
    if (marks) {
      // Like the waits below: a stop that rejects (the stream's error) throws here too.
      const taken = await until.race(writePieces(out, data, marks, (k) => inflight[0] === batch && buffer.progress?.(batch, k)), false);
      // A failed stream: the batch is still in `inflight`, for the caller to requeue whole once the
      // stream is seen closed (returning before that would read as "finished").
      if (!taken) await stop;
      if (stopped()) return;
      data = data.subarray(marks[marks.length - 1]);
    }
    let handed = false;
    const hand = () => {
      if (handed || inflight[0] !== batch) return;
      handed = true;
      inflight.shift();
      stats.messagesSent += batch.count;
      stats.bytesSent += size;
      stats.lastSendMs = Date.now();
      written?.(batch.frames, batch.count);
      buffer.handedOn(batch);
    };
    const queued = kernelQueue(out);
    const ok = out.write(data, (err) => {
      if (!err) hand();
    });
    // Taken whole by the kernel already: handed on now, not at the callback (the next tick). With a
    // backlog this loop writes batch after batch in one go, and a kill -9 during it left every one
    // delivered and none committed (measured: 1,451 lines repeated after one kill).
    const wasBackedUp = backedUp;
    const took = tookAll(out);
    backedUp = !took && encryptedQueue(out, data.length) !== 0;
    if (took) hand();
    else if (backedUp && !marks && !wasBackedUp && queued === 0 && framing !== 'lf' && buffer.progress) {
      // The first write the kernel did not take whole (the batch went whole: the socket took the
      // last one at once): the marks within what it did take are delivered even if we die now.
      const left = kernelQueue(out);
      const taken = left === undefined ? 0 : data.length - left;
      const bytes = batch.marks?.bytes ?? [];
      for (let k = 0; k < bytes.length && bytes[k] <= taken && inflight[0] === batch; k++) buffer.progress(batch, k);
    }
    if (!ok) {
      buffer.backedUp?.(true);
      await until.race(new Promise((r) => out.once('drain', r)), undefined);
      buffer.backedUp?.(false);
    }
  }
}

/**
 * Bytes written to a plain socket that libuv still queues (the kernel did not take them yet);
 * undefined for other streams (TLS encrypts first, stdout): then nothing is counted as taken early.
 */
function kernelQueue(out: Writable): number | undefined {
  const q = (out as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize;
  return typeof q === 'number' && out.constructor.name === 'Socket' ? q : undefined;
}

/**
 * For a TLS socket whose only pending write is the last one (`size` bytes): the encrypted bytes its
 * TCP handle still queues (0: the kernel took them all). Undefined for any other stream, or when
 * more is pending: then the stream counts as backed up unless it took everything (tookAll). A TLS
 * socket's write stays pending until its callback, the next tick, even when the kernel took all of
 * it at once: counted as backed up, every TLS batch went in pieces, each waiting for the one
 * before, which halved TLS throughput and doubled its CPU per GB (bench/README.md).
 */
function encryptedQueue(out: Writable, size: number): number | undefined {
  if (out.constructor.name !== 'TLSSocket' || out.writableLength > size) return undefined;
  const q = (out as { _handle?: { _parent?: { writeQueueSize?: unknown } } })._handle?._parent?.writeQueueSize;
  return typeof q === 'number' ? q : undefined;
}

/**
 * The last write was all taken at once (by the kernel, for a socket): its bytes are delivered even
 * if we die now, so it counts as handed on without waiting for its callback (the next tick). A
 * stream that failed may have nothing queued too: never taken for written.
 */
function tookAll(out: Writable): boolean {
  return out.writableLength === 0 && !out.destroyed && out.errored == null;
}

/**
 * Writes `data` up to its last mark, one piece at a time, each once the stream took the one before
 * (written together, their callbacks would come together), calling `onPiece(k)` as piece k is taken:
 * at once when taken at once, else at its callback. False when the stream failed (a destroyed stream
 * calls back every write with its error).
 */
function writePieces(out: Writable, data: Buffer, marks: number[], onPiece: (k: number) => void): Promise<boolean> {
  return new Promise((resolve) => {
    let k = 0;
    const step = (): void => {
      while (k < marks.length) {
        const piece = k++;
        let waiting = false;
        out.write(data.subarray(piece === 0 ? 0 : marks[piece - 1], marks[piece]), (err) => {
          if (!waiting) return;
          if (err) return resolve(false);
          onPiece(piece);
          step();
        });
        if (!tookAll(out)) {
          waiting = true;
          return;
        }
        onPiece(piece);
      }
      resolve(true);
    };
    step();
  });
}
