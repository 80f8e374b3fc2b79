import t from 'tap';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import { SpillBuffer, type SpillOptions } from '../../src/buffer/spill/spill-buffer.js';
import type { TakenBatch } from '../../src/batch.js';
import { splitOctetCounted } from '../helpers/rfc5424.js';
import { takeToEnd } from '../helpers/take-to-end.js';

/**
 * Batch.canWait: a source whose lines stay in its file (one it is catching up on) is paced by a
 * drain that is sending, instead of having its batches written to the spill and read back. A drain
 * that frees no room within --spill-fsync-interval gets the spill as before, and so do batches that
 * cannot wait and drains that are away.
 */

const MEMORY = 64 * 1024;
const line = (i: number) => `line ${i} ${'x'.repeat(8000)}`;
const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
const msgOf = (frames: Buffer) => splitOctetCounted(frames).frames.map((f) => f.toString());

async function openSpill(t: Tap.Test, fsyncIntervalMs: number, opts: Partial<SpillOptions> = {}) {
  const spill = await SpillBuffer.open({
    dir: join(t.testdir(), 'spill'),
    maxBytes: 16 * MEMORY,
    memoryMaxBytes: MEMORY,
    segmentBytes: 64 * 1024,
    fsyncIntervalMs,
    whenFull: 'block',
    log: pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() })),
    stats: new Stats(),
    gapFramer: new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 65536 }),
    ...opts,
  });
  // The spill's timer does not hold the process open (a real sink does): the test must.
  const alive = setInterval(() => {}, 1000);
  t.teardown(async () => {
    clearInterval(alive);
    await spill.shutdown().catch(() => {});
  });
  let seq = 0;
  const push = (canWait: boolean) => spill.push({ frames: frame(line(seq++)), count: 1, ...(canWait && { canWait }) });
  return { spill, push, pushed: () => seq };
}

/** The line numbers of a batch's messages. */
const numbersOf = (frames: Buffer) => msgOf(frames).map((m) => Number(/^line (\d+) /.exec(m)![1]));
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Hands on `first` (taken earlier), lets the push that waits for room end, then takes every batch to
 * the end: the line numbers, in the order sent.
 */
async function drainToEnd(spill: SpillBuffer, first: TakenBatch, waiting: Promise<void>): Promise<number[]> {
  const got = numbersOf(first.frames);
  spill.handedOn(first);
  await waiting;
  spill.close();
  await takeToEnd(spill, (frames) => got.push(...numbersOf(frames)));
  return got;
}

/** Pushes batches of `canWait` until one does not go through at once (memory is full); returns that push. */
async function fillMemory(push: (canWait: boolean) => Promise<void>, canWait: boolean): Promise<{ waiting: Promise<void>; settled: () => boolean }> {
  for (;;) {
    let settled = false;
    const p = push(canWait).then(() => {
      settled = true;
    });
    // Into memory is synchronous: a push still pending after a turn of the event loop met a full memory.
    await new Promise((resolve) => setImmediate(resolve));
    if (!settled) return { waiting: p, settled: () => settled };
  }
}

t.test('a batch that can wait is paced by a drain that is sending: it goes to memory once room comes, nothing is spilled', async (t) => {
  // An hour: only room can end the wait.
  const { spill, push, pushed } = await openSpill(t, 3_600_000);
  await push(true);
  const out = spill.take()!;
  const { waiting, settled } = await fillMemory(push, true);
  t.notOk(settled(), 'memory full: the push waits');
  t.equal(spill.counters.spilledBatches, 0, 'nothing went to the spill while it waited');
  const got = await drainToEnd(spill, out, waiting);
  t.equal(spill.counters.spilledBatches, 0, 'the waiting batch went to memory, not to the spill');
  t.same(got, upTo(pushed()), 'every line, once, in order');
});

t.test('a drain that frees no room within the fsync interval: the waiting batch is spilled then, and the order holds', async (t) => {
  const interval = 100;
  const { spill, push, pushed } = await openSpill(t, interval);
  await push(true);
  const out = spill.take()!;
  const began = Date.now();
  const { waiting } = await fillMemory(push, true);
  await waiting;
  t.ok(Date.now() - began >= interval - 5, `spilled after the interval (${Date.now() - began} ms)`);
  t.ok(spill.counters.spilledBatches > 0, 'then it went to the spill');
  t.same(await drainToEnd(spill, out, waiting), upTo(pushed()), 'every line, once, in order');
});

t.test('a batch that cannot wait (stdin, a file falling behind) goes to the spill at once when memory is full', async (t) => {
  // An hour: a batch that waited for room would hold this test until it timed out.
  const { spill, push, pushed } = await openSpill(t, 3_600_000);
  await push(false);
  const out = spill.take()!;
  const { waiting } = await fillMemory(push, false);
  await waiting;
  t.ok(spill.counters.spilledBatches > 0, 'spilled without waiting for the drain');
  t.same(await drainToEnd(spill, out, waiting), upTo(pushed()), 'every line, once, in order');
});

t.test('with the drain away (nothing out with the sink), a batch that can wait is spilled at once', async (t) => {
  const { spill, push } = await openSpill(t, 3_600_000);
  let n = 0;
  while (spill.counters.spilledBatches === 0) {
    await push(true);
    n++;
  }
  t.ok(n * line(0).length <= MEMORY + line(0).length, `spilled once memory held its read-ahead (${n} batches pushed)`);
});
