import t from 'tap';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import { SpillBuffer, type WhenFull } from '../../src/buffer/spill/spill-buffer.js';
import { FaultyIo } from '../helpers/faulty-io.js';
import { fakeClock } from '../helpers/fake-clock.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';

/**
 * --memory-max-bytes holds while the spill cannot be written and the drain is away: memory may go
 * past it by one batch, never by one more each time the disk is tried again.
 */

const MEMORY = 1024 * 1024;
const BATCH = 32 * 1024;
const RETRY_MS = 1000;

/**
 * Whether a push went through or waits for room. With the disk failing, nothing the spill does
 * here touches a file: a push that can go through has by the next turn of the event loop.
 */
const through = (p: Promise<void>) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);

async function openUnwritable(t: Tap.Test, whenFull: WhenFull) {
  const io = new FaultyIo();
  const spill = await SpillBuffer.open({
    dir: t.testdir(),
    maxBytes: 8 * MEMORY,
    memoryMaxBytes: MEMORY,
    segmentBytes: 256 * 1024,
    // The timer stays out of it: every step below is the test's.
    fsyncIntervalMs: 3_600_000,
    whenFull,
    log: pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() })),
    stats: new Stats(),
    gapFramer: new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 65536 }),
    io,
    retryMs: RETRY_MS,
  });
  t.teardown(async () => {
    io.failWrites = undefined;
    spill.abandon();
    await io.closeAll();
  });
  io.failWrites = 'ENOSPC';
  /** The disk heals, the drain comes back: everything still held is taken to the end, its lines and gap records. */
  const drainToEnd = async () => {
    io.failWrites = undefined;
    const lines: number[] = [];
    const gaps: Array<Record<string, string>> = [];
    for (;;) {
      const b = spill.take();
      if (!b) {
        if (spill.finished) return { lines, gaps };
        await spill.waitForData();
        continue;
      }
      for (const f of splitOctetCounted(b.frames).frames) {
        const m = /^L(\d+) /.exec(f.toString());
        if (m) lines.push(Number(m[1]));
        else gaps.push(...parseRfc5424(f).sd.map((e) => Object.fromEntries(e.params)));
      }
      spill.handedOn(b);
    }
  };
  let seq = 0;
  const push = (size = BATCH) => {
    const n = seq++;
    const msg = `L${n} ${'x'.repeat(size)}`;
    return spill.push({ frames: Buffer.from(`${msg.length} ${msg}`), count: 1, origin: { source: 's', start: n, end: n + 1 } });
  };
  return { spill, push, drainToEnd, pushed: () => seq };
}

t.test('an unwritable disk tried again and again: the overflow does not add a batch past the bound each time', async (t) => {
  const clock = fakeClock(t);
  const { spill, push, drainToEnd, pushed } = await openUnwritable(t, 'block');
  // The drain is away: memory fills up to its bound (the disk fails on the first try to spill).
  const waiting: Array<Promise<void>> = [];
  for (let i = 0; i < 40; i++) {
    const p = push();
    if (await through(p)) continue;
    waiting.push(p);
    break;
  }
  t.equal(waiting.length, 1, 'memory full: reading waits (--when-full block)');
  t.ok(spill.memoryBytes <= MEMORY, `memory ${spill.memoryBytes} within ${MEMORY}`);
  t.ok(spill.problem, 'the spill is unwritable');
  let max = spill.memoryBytes;
  for (let round = 0; round < 8; round++) {
    // The retry comes due; sources push at once: the first one's write fails while the others'
    // wait behind it on the disk chain.
    clock.advance(RETRY_MS);
    const pushes = [push(), push(), push(), push()];
    for (const p of pushes) {
      if (!(await through(p))) waiting.push(p);
    }
    max = Math.max(max, spill.memoryBytes);
  }
  t.ok(max <= MEMORY + BATCH + 64, `memory at most ${max}, within ${MEMORY} and one batch`);
  t.ok(spill.problem, 'still unwritable');
  const end = Promise.all(waiting).then(() => spill.close());
  const { lines } = await drainToEnd();
  await end;
  // Sources pushing at once have no order among them: each line once is what counts.
  t.same([...lines].sort((a, b) => a - b), [...Array(pushed()).keys()], 'every line delivered once');
});

t.test('an unwritable disk and lines dropped one by one: no gap record in memory past the bound for each', async (t) => {
  const { spill, push, drainToEnd, pushed } = await openUnwritable(t, 'drop-newest');
  for (let i = 0; i < 40; i++) await push();
  t.ok(spill.counters.droppedLines > 0, `memory full: ${spill.counters.droppedLines} dropped`);
  for (let i = 0; i < 2000; i++) await push(100);
  t.ok(spill.counters.droppedLines > 1500, `${spill.counters.droppedLines} dropped`);
  t.ok(spill.memoryBytes <= MEMORY + BATCH + 64, `memory ${spill.memoryBytes} within ${MEMORY} and one batch`);
  spill.close();
  const { lines, gaps } = await drainToEnd();
  const named = gaps.flatMap((g) => [...Array(Number(g.to) - Number(g.from)).keys()].map((k) => Number(g.from) + k));
  t.same([...lines, ...named].sort((a, b) => a - b), [...Array(pushed()).keys()], 'each line delivered or named by a gap record, once');
  t.equal(named.length, spill.counters.droppedLines, 'the gap records name every dropped line');
  t.ok(gaps.length <= 2, `${gaps.length} gap records: those dropped while memory was full were named together`);
});
