import t from 'tap';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch, BatchBuffer, TakenBatch } from '../../../src/batch.js';
import { Stats } from '../../../src/telemetry/stats.js';
import { CheckpointStore } from '../../../src/state/checkpoints.js';
import { FileTailer, type TailerOptions } from '../../../src/sources/file/tailer.js';
import { BareEncoder, RecordingLog } from '../../helpers/tail-harness.js';
import { fakeClock } from '../../helpers/fake-clock.js';

/**
 * Batch.canWait from the tailer: set while the file's unread part is not growing (the drain may pace
 * the reading), not while the writer gets further ahead of the reader (then memory that is full
 * spills, as before).
 */

const CHUNK = 4096;
const LINE = 100;
const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `${String(from + i).padStart(6, '0')} ${'x'.repeat(LINE - 8)}\n`).join('');
const PER_CHUNK = Math.floor(CHUNK / LINE);

/** Hands every batch on soon after it comes, and records whether each batch of lines could wait; `afterPush` runs before the tailer reads again. */
class RecordingBuffer implements BatchBuffer {
  readonly canWait: boolean[] = [];
  lines = 0;
  closed = false;
  finished = false;
  bytes = 0;

  constructor(private readonly afterPush: (pushes: number) => void = () => {}) {}

  async push(batch: Batch): Promise<void> {
    if (batch.count > 0) {
      this.canWait.push(batch.canWait === true);
      this.lines += batch.count;
    }
    // Handed on later, as a sink would: never inside the push.
    setImmediate(() => {
      batch.onHandedOn?.();
      batch.release?.();
    });
    this.afterPush(this.canWait.length);
  }

  take(): TakenBatch | undefined {
    return undefined;
  }
  waitForData(): Promise<void> {
    return new Promise(() => {});
  }
  handedOn(): void {}
  requeue(): void {}
  close(): void {
    this.closed = true;
  }
}

function tailerOptions(buffer: BatchBuffer): TailerOptions {
  return {
    encoder: new BareEncoder(),
    buffer,
    stats: new Stats(),
    log: new RecordingLog().logger,
    startAt: 'beginning',
    once: true,
    pollMs: 20,
    maxLineBytes: 64 * 1024,
    readChunkBytes: CHUNK,
  };
}

const tailer = (path: string, buffer: BatchBuffer) => new FileTailer(path, tailerOptions(buffer));

t.test('a file read while it does not grow: every batch can wait for the drain', async (t) => {
  const path = join(t.testdir(), 'audit.log');
  writeFileSync(path, lines(0, 10 * PER_CHUNK));
  const buffer = new RecordingBuffer();
  await tailer(path, buffer).run();
  t.equal(buffer.lines, 10 * PER_CHUNK, 'every line read');
  t.ok(buffer.canWait.length >= 10, `read in pieces (${buffer.canWait.length} batches)`);
  t.ok(buffer.canWait.every(Boolean), 'each could wait: its unread part only shrank');
});

/**
 * Reads a file of two reads' worth while a writer appends `more(pushes)` reads' worth after each
 * batch; the clock moves `msPerRead` per read. Returns the batches' canWait and the lines written.
 */
async function readWhileWriting(t: Tap.Test, msPerRead: number, more: (pushes: number) => number) {
  const clock = fakeClock(t);
  const path = join(t.testdir(), 'audit.log');
  let written = 2 * PER_CHUNK;
  writeFileSync(path, lines(0, written));
  const buffer = new RecordingBuffer((pushes) => {
    clock.advance(msPerRead);
    const n = more(pushes) * PER_CHUNK;
    if (n === 0) return;
    appendFileSync(path, lines(written, n));
    written += n;
  });
  await tailer(path, buffer).run();
  t.equal(buffer.lines, written, 'every line read');
  return buffer.canWait;
}

t.test('a file that grows faster than it is read: those batches cannot wait; once it stops growing, they can again', async (t) => {
  const GROWING = 8;
  // A second between reads, so each read ends a window. Before each of the first reads, two reads'
  // worth more arrives: the unread part grows by one.
  const canWait = await readWhileWriting(t, 1000, (pushes) => (pushes > GROWING ? 0 : 2));
  t.same(canWait.slice(1, GROWING + 1), Array(GROWING).fill(false), 'while it grew: no batch could wait');
  t.ok(canWait.slice(GROWING + 2).length > 0 && canWait.slice(GROWING + 2).every(Boolean), 'after it stopped: each could wait again');
});

t.test('a writer that appends in bursts, faster than the file is read: judged over a second, not read by read', async (t) => {
  const BURSTS = 6;
  // A read every 250 ms; every fourth read, six reads' worth arrives at once: between bursts the
  // unread part shrinks, over each second it grows by two reads' worth.
  const canWait = await readWhileWriting(t, 250, (pushes) => (pushes % 4 !== 0 || pushes > 4 * BURSTS ? 0 : 6));
  const whileBursting = canWait.slice(4, 4 * BURSTS);
  t.ok(whileBursting.length >= 16 && whileBursting.every((w) => !w), `while the bursts came, after the first second: no batch could wait (${whileBursting.length} batches)`);
});

t.test('a rotated file, read before the live one: its batches cannot wait (what grows meanwhile is the live file)', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'audit.log');
  const startedAtMs = Date.now() - 60_000;
  writeFileSync(path, lines(0, 6 * PER_CHUNK));
  // Renamed after the process started: lumberjack's backup, read first.
  renameSync(path, join(dir, 'audit-2026-11-30T12-00-00.000.log'));
  writeFileSync(path, lines(6 * PER_CHUNK, 4 * PER_CHUNK));
  const buffer = new RecordingBuffer();
  const checkpoints = await CheckpointStore.open(join(dir, 'state'), new RecordingLog().logger);
  await new FileTailer(path, { ...tailerOptions(buffer), startedAtMs, checkpoints }).run();
  await checkpoints.close();
  t.equal(buffer.lines, 10 * PER_CHUNK, 'both files read');
  t.ok(buffer.canWait.length >= 10, `read in pieces (${buffer.canWait.length} batches)`);
  t.same(buffer.canWait.slice(0, 6), Array(6).fill(false), "the backup's batches could not wait");
  t.ok(buffer.canWait.slice(6).every(Boolean), "the live file's could");
});
