import t from 'tap';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import { crc32, crc32Table } from '../../src/buffer/spill/crc32.js';
import { encodeRecord, HEADER_BYTES, parseRecord } from '../../src/buffer/spill/disk-record.js';
import { SpillBuffer, type SpillOptions } from '../../src/buffer/spill/spill-buffer.js';
import type { Batch } from '../../src/batch.js';
import { FaultyIo } from '../helpers/faulty-io.js';
import { takeToEnd } from '../helpers/take-to-end.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';

/** One octet-counted frame per message, as the encoder makes them. */
const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
const msgOf = (frames: Buffer) => splitOctetCounted(frames).frames.map((f) => f.toString());

function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, dest), lines };
}

async function openSpill(t: Tap.Test, dir: string, opts: Partial<SpillOptions> = {}) {
  const { log, lines } = logCapture();
  const spill = await SpillBuffer.open({
    dir,
    maxBytes: 1024 * 1024,
    memoryMaxBytes: 64 * 1024,
    segmentBytes: 64 * 1024,
    fsyncIntervalMs: 20,
    whenFull: 'block',
    log,
    stats: new Stats(),
    gapFramer: new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 65536 }),
    ...opts,
  });
  // The spill's timer does not hold the process open (a real sink does): the test must.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(alive));
  let shut = false;
  const shutdown = () => {
    shut = true;
    return spill.shutdown();
  };
  // On a failed assertion: the lock and the timer must go, though the folder may be gone already.
  t.teardown(async () => {
    if (!shut) await spill.shutdown().catch(() => {});
  });
  return { spill, lines, shutdown };
}

/** What a sink does: takes `n` batches, reports each handed on, returns their messages. */
async function drainAll(spill: SpillBuffer, n: number): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; ) {
    const b = spill.take();
    if (!b) {
      await spill.waitForData();
      continue;
    }
    got.push(...msgOf(b.frames));
    spill.handedOn(b);
    i += b.count;
  }
  return got;
}

/** drainAll for a closed spill: takes batches until it is finished, returns their messages. */
async function drainToEnd(spill: SpillBuffer): Promise<string[]> {
  const got: string[] = [];
  await takeToEnd(spill, (frames) => got.push(...msgOf(frames)));
  return got;
}

const big = (i: number) => `line ${i} ${'x'.repeat(8000)}`;

/** A new instance on `dir` (the next run) sends `expected`, and then nothing. */
async function nextRunSends(t: Tap.Test, dir: string, expected: string[], msg: string): Promise<void> {
  const b = await openSpill(t, dir);
  b.spill.close();
  t.same(await drainToEnd(b.spill), expected, msg);
  await b.shutdown();
}

/**
 * Spills lines 0..n-1 and stops; then `damage` changes the bytes of the last segment (given the
 * offset of its second record). Returns the number of the first line in that segment.
 */
async function damageLastSegment(t: Tap.Test, dir: string, n: number, damage: (data: Buffer, second: number) => void): Promise<number> {
  const a = await openSpill(t, dir, { segmentBytes: 1024 * 1024 });
  for (let i = 0; i < n; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  await a.shutdown();
  const segs = readdirSync(dir).filter((name) => name.endsWith('.seg')).sort();
  const file = join(dir, segs[segs.length - 1]);
  const data = readFileSync(file);
  const first = parseRecord(data, 0);
  if (first.kind !== 'record') throw new Error('expected a record');
  damage(data, first.next);
  writeFileSync(file, data);
  return Number(/^line (\d+)/.exec(msgOf(first.record.frames)[0])![1]);
}

t.test('record: encode/decode round trip, short and damaged input', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'CRC-32 check value');
  t.equal(crc32Table(Buffer.from('123456789')), 0xcbf43926, 'table fallback agrees');
  const origin = { source: '/var/log/a.log', start: 10, end: 42 };
  const rec = encodeRecord(frame('hello'), 1, origin, 2 ** 52 + 7);
  const p = parseRecord(rec, 0);
  t.equal(p.kind, 'record');
  if (p.kind !== 'record') return;
  t.same(p.record.origin, origin);
  t.equal(p.record.count, 1);
  t.equal(p.record.id, 2 ** 52 + 7, 'the batch id survives');
  t.same(msgOf(p.record.frames), ['hello']);
  t.equal(p.next, rec.length);
  t.same(parseRecord(rec.subarray(0, rec.length - 1), 0), { kind: 'short', need: rec.length }, 'a cut body is short, not bad');
  t.same(parseRecord(rec.subarray(0, 5), 0), { kind: 'short', need: HEADER_BYTES }, 'a cut header is short');
  const flipped = Buffer.from(rec);
  flipped[rec.length - 2] ^= 0x40;
  t.same(parseRecord(flipped, 0), { kind: 'bad', reason: 'checksum mismatch' });
  const noMagic = Buffer.from(rec);
  noMagic[0] = 0;
  t.same(parseRecord(noMagic, 0), { kind: 'bad', reason: 'bad magic' });
  t.same(parseRecord(noMagic.subarray(0, 3), 0), { kind: 'bad', reason: 'bad magic' }, 'a short header that is not a magic prefix is damage');
  const noOrigin = parseRecord(encodeRecord(frame('x'), 1, undefined, undefined), 0);
  t.equal(noOrigin.kind === 'record' && noOrigin.record.origin, undefined);
  t.equal(noOrigin.kind === 'record' && noOrigin.record.id, undefined, 'a record of an older version has no id');
  t.same(noOrigin.kind === 'record' && msgOf(noOrigin.record.frames), ['x'], 'and reads as before');
});

/** An empty Buffer as one looks after a native write: its memory off V8's heap, its data pointer NULL. */
function emptyOffHeap(): Buffer {
  const b = Buffer.alloc(0);
  void b.buffer; // materializes the backing store, as a writev of it does
  return b;
}

t.test('record: an empty batch (a position without lines) survives its checksum, whatever its memory', async (t) => {
  const origin = { source: '/var/log/a.log', start: 10, end: 10 };
  t.equal(crc32(emptyOffHeap(), 0x12345678), 0x12345678, 'CRC-32 of nothing goes on from the value given');
  const p = parseRecord(encodeRecord(emptyOffHeap(), 0, origin, 7), 0);
  t.equal(p.kind, 'record', p.kind === 'bad' ? p.reason : 'intact');
  if (p.kind === 'record') t.same([p.record.count, p.record.origin], [0, origin]);
});

t.test('empty batches spilled and read back are intact: no segment damaged, every commit runs once', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { spill, lines, shutdown } = await openSpill(t, dir);
  // One shared empty Buffer, as the tailer uses: after its first write its memory is off-heap.
  const empty = Buffer.alloc(0);
  const commits: number[] = [];
  const N = 40;
  for (let i = 0; i < N; i++) {
    const n = i;
    if (i % 4 === 0) await spill.push({ frames: empty, count: 0, origin: { source: 'f', start: i, end: i }, onHandedOn: () => commits.push(n) });
    else await spill.push({ frames: frame(big(i)), count: 1, origin: { source: 'f', start: i, end: i + 1 }, onHandedOn: () => commits.push(n) });
  }
  t.ok(spill.counters.spilledBatches > N / 2, 'most batches went to disk');
  const got = await drainAll(spill, N - N / 4);
  t.same(got, [...Array(N).keys()].filter((i) => i % 4 !== 0).map(big), 'every line, in order');
  t.equal(spill.counters.corruptSegments, 0, 'no segment damaged');
  t.same(lines.filter((l) => /damaged/.test(String(l.msg))), [], 'nothing logged as damaged');
  spill.close();
  await shutdown();
  t.same(commits, [...Array(N).keys()], 'each commit once, in order');
});

t.test('order across memory and spill; commits once durable; files 0600, folder 0700', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { spill, shutdown } = await openSpill(t, dir);
  const commits: number[] = [];
  let allCommitted!: () => void;
  const committed = new Promise<void>((r) => (allCommitted = r));
  const N = 60; // ~480 KB: far past the 64 KiB of memory, so most of it goes to disk
  for (let i = 0; i < N; i++) {
    await spill.push({
      frames: frame(big(i)),
      count: 1,
      origin: { source: 'f', start: i, end: i + 1 },
      onHandedOn: () => {
        commits.push(i);
        if (i === N - 1) allCommitted();
      },
    });
  }
  // Nothing was taken: positions advance because the lines are durable in the spill.
  await committed;
  t.same(commits, [...Array(N).keys()], 'commits run once each, in order, without any sink');
  t.ok(spill.counters.spilledBatches > 0, 'batches went to disk');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'folder 0700');
  const segs = readdirSync(dir).filter((n) => n.endsWith('.seg'));
  t.ok(segs.length >= 2, 'several segments');
  for (const n of segs) t.equal(statSync(join(dir, n)).mode & 0o777, 0o600, `${n} is 0600`);
  // Newer lines pushed while the spill holds older ones go after them.
  await spill.push({ frames: frame('newest'), count: 1 });
  const got = await drainAll(spill, N + 1);
  t.same(got, [...[...Array(N).keys()].map(big), 'newest'], 'spilled lines first, in order, then the newer one');
  spill.close();
  await spill.waitForData();
  t.ok(spill.finished, 'finished once all is handed on');
  const left = await shutdown();
  t.equal(left.bytes, 0, 'nothing left');
  t.same(readdirSync(dir).filter((n) => n.endsWith('.seg')), [], 'sent segments are deleted');
});

t.test('what was handed on from the spill is not sent again after kill -9, though no fsync came', async (t) => {
  const dir = join(t.testdir(), 'spill');
  // The real file operations, files tracked so that the "killed" run's can be closed as the kernel
  // would; a rename onto cursor.json is the quick save the test waits for.
  let cursorSaved: () => void = () => {};
  const io = new (class extends FaultyIo {
    override async rename(from: string, to: string) {
      await super.rename(from, to);
      if (to.endsWith('cursor.json')) cursorSaved();
    }
  })();
  // An hour between fsyncs: only the quick save can record what was handed on.
  const a = await openSpill(t, dir, { fsyncIntervalMs: 3_600_000, io });
  for (let i = 0; i < 30; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  t.ok(a.spill.counters.spilledBatches >= 20, 'most went to disk');
  const saved = new Promise<void>((resolve) => (cursorSaved = resolve));
  t.same(await drainAll(a.spill, 20), [...Array(20).keys()].map(big));
  await saved;
  a.spill.abandon(); // kill -9: no shutdown, no fsync, no further save
  await io.closeAll();
  const b = await openSpill(t, dir);
  t.same(await drainAll(b.spill, 10), [...Array(10).keys()].map((i) => big(i + 20)), 'the next run starts after what was handed on');
  await b.shutdown();
});

t.test('a spilled batch is soft (Batch.onSpilled) once written, before any fsync, in order; onHandedOn waits for the fsync or the send', async (t) => {
  const dir = join(t.testdir(), 'spill');
  // An hour between fsyncs and no segment sealed (a seal fsyncs): nothing spilled is durable here.
  const a = await openSpill(t, dir, { fsyncIntervalMs: 3_600_000, segmentBytes: 1024 * 1024 });
  const events: string[] = [];
  const push = (i: number) => a.spill.push({ frames: frame(big(i)), count: 1, onHandedOn: () => events.push(`h${i}`), onSpilled: () => events.push(`s${i}`) });
  for (let i = 0; i < 30; i++) await push(i);
  t.ok(a.spill.counters.spilledBatches >= 20, 'most went to disk');
  t.same(events, [...Array(30).keys()].map((i) => `s${i}`), 'all written (memory full moved memory to the spill first): all soft, in order; none durable');
  t.same(await drainAll(a.spill, 30), [...Array(30).keys()].map(big));
  t.same(events.slice(30), [...Array(30).keys()].map((i) => `h${i}`), 'each read back and sent: its durable commit, in order');
  await a.shutdown();
  // A batch still in memory is not soft: only a write to the spill file makes it so.
  const held = await openSpill(t, join(t.testdir(), 'held'), { fsyncIntervalMs: 3_600_000, segmentBytes: 1024 * 1024, memoryMaxBytes: 1024 * 1024 });
  const got: string[] = [];
  await held.spill.push({ frames: frame('first'), count: 1, onHandedOn: () => got.push('h0'), onSpilled: () => got.push('s0') });
  t.same(got, [], 'in memory: not soft');
  await held.shutdown();
  t.same(got, ['s0', 'h0'], 'written and fsynced at shutdown: soft, then durable');
});

t.test('what was spilled and not sent is sent first by the next run', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const a = await openSpill(t, dir);
  for (let i = 0; i < 30; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  t.same(await drainAll(a.spill, 5), [0, 1, 2, 3, 4].map(big));
  a.spill.close();
  const left = await a.shutdown();
  t.ok(left.bytes > 0, 'the rest stays in the spill');
  const b = await openSpill(t, dir);
  t.match(b.lines.map((l) => l.msg), ['spill from an earlier run found; it is sent first']);
  await b.spill.push({ frames: frame('new'), count: 1 });
  t.same(await drainAll(b.spill, 26), [...[...Array(25).keys()].map((i) => big(i + 5)), 'new'], 'no loss, no duplicate, the new line last');
  await b.shutdown();
});

t.test('message keys (NATS Nats-Msg-Id) survive the record and a restart; records without them read as before', async (t) => {
  const keys = { prefix: '2049:131:abcdEFGH-_ijklmn:', offsets: [0, 1200, 1200, 5000] };
  const origin = { source: '/var/log/a.log', start: 0, end: 6000 };
  const p = parseRecord(encodeRecord(frame('k'), 4, origin, 99, keys), 0);
  t.equal(p.kind, 'record');
  if (p.kind !== 'record') return;
  t.same(p.record.keys, keys);
  t.same(p.record.origin, origin);
  t.equal(p.record.id, 99);
  t.same(msgOf(p.record.frames), ['k'], 'the frames follow the keys');
  const plain = parseRecord(encodeRecord(frame('k'), 1, origin, 99), 0);
  t.equal(plain.kind === 'record' && plain.record.keys, undefined, 'no keys: none read');

  const dir = join(t.testdir(), 'spill');
  const a = await openSpill(t, dir);
  for (let i = 0; i < 10; i++) await a.spill.push({ frames: frame(big(i)), count: 1, keys: { prefix: 'f:', offsets: [i * 100] } });
  a.spill.close();
  t.ok((await a.shutdown()).bytes > 0, 'on disk');
  const b = await openSpill(t, dir);
  const got: Array<unknown> = [];
  for (let i = 0; i < 10; i++) {
    const batch = b.spill.take() ?? (await b.spill.waitForData(), b.spill.take());
    if (!batch) break;
    got.push(batch.keys);
    b.spill.handedOn(batch);
  }
  t.same(got, [...Array(10).keys()].map((i) => ({ prefix: 'f:', offsets: [i * 100] })), 'every batch read back with its keys');
  await b.shutdown();
});

t.test('a torn record at the end of the last segment is cut off at start', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const a = await openSpill(t, dir);
  for (let i = 0; i < 12; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  await a.shutdown();
  const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
  const last = join(dir, segs[segs.length - 1]);
  const sizeBefore = statSync(last).size;
  const torn = encodeRecord(frame('torn'), 1, undefined, 1);
  appendFileSync(last, torn.subarray(0, torn.length - 3));
  const b = await openSpill(t, dir);
  t.equal(b.spill.counters.tornTails, 1, 'counted');
  t.ok(b.lines.some((l) => /torn record/.test(String(l.msg))), 'logged');
  t.equal(statSync(last).size, sizeBefore, 'cut back to the last whole record');
  t.same(await drainAll(b.spill, 12), [...Array(12).keys()].map(big), 'every whole record is sent');
  await b.shutdown();
});

t.test('flipped bytes: the damaged record is skipped, the rest sent, the segment moved aside', async (t) => {
  const dir = join(t.testdir(), 'spill');
  // Flip bytes inside the second record of the segment.
  const firstInSeg = await damageLastSegment(t, dir, 12, (data, second) => {
    data[second + 100] ^= 0xff;
    data[second + 101] ^= 0xff;
  });
  const b = await openSpill(t, dir);
  const got = await drainAll(b.spill, 11);
  const want = [...Array(12).keys()].filter((i) => i !== firstInSeg + 1).map(big);
  t.same(got, want, 'every intact record, in order');
  t.equal(b.spill.counters.corruptSegments, 1, 'counted');
  t.ok(b.lines.some((l) => l.level === 50 && /damaged record/.test(String(l.msg))), 'logged as an error');
  b.spill.close();
  await b.shutdown();
  const aside = readdirSync(dir).filter((n) => n.endsWith('.corrupt'));
  t.equal(aside.length, 1, 'the segment is kept aside for inspection');
  t.same(readdirSync(dir).filter((n) => n.endsWith('.seg')), [], 'and no longer read');
});

t.test('a segment that is garbage from its first byte does not stop the others', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const a = await openSpill(t, dir);
  for (let i = 0; i < 10; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  await a.shutdown();
  writeFileSync(join(dir, '0000000000000001.seg'), Buffer.alloc(5000, 0x41), { mode: 0o600 });
  const b = await openSpill(t, dir);
  t.same(await drainAll(b.spill, 10), [...Array(10).keys()].map(big));
  t.equal(b.spill.counters.corruptSegments, 1);
  await b.shutdown();
});

t.test('drop-newest: dropped lines are counted and replaced by one gap record', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { spill, shutdown } = await openSpill(t, dir, { maxBytes: 100 * 1024, memoryMaxBytes: 16 * 1024, segmentBytes: 32 * 1024, whenFull: 'drop-newest' });
  const N = 40;
  for (let i = 0; i < N; i++) await spill.push({ frames: frame(big(i)), count: 1, origin: { source: '/a.log', start: i * 8010, end: (i + 1) * 8010 } });
  const dropped = spill.counters.droppedLines;
  t.ok(dropped > 0 && dropped < N, `${dropped} dropped`);
  t.type(spill.fullSinceMs, 'number', 'full while lines are dropped');
  spill.close();
  const got = await drainToEnd(spill);
  const kept = got.filter((m) => m.startsWith('line'));
  t.same(kept, [...Array(N - dropped).keys()].map(big), 'the oldest kept, in order');
  t.equal(spill.fullSinceMs, undefined, 'not full once sent');
  const gaps = got.filter((m) => !m.startsWith('line')).map((m) => parseRfc5424(Buffer.from(m)));
  t.equal(gaps.length, 1, 'one gap record for one contiguous hole');
  t.equal(gaps[0].msgId, 'gap');
  const sd = gaps[0].sd[0];
  t.equal(sd.id, 'gap@32473');
  t.same(Object.fromEntries(sd.params), {
    source: '/a.log',
    lines: String(dropped),
    bytes: String(dropped * 8010),
    from: String((N - dropped) * 8010),
    to: String(N * 8010),
    reason: 'buffer full (--when-full drop-newest)',
  });
  await shutdown();
});

t.test('drop-newest: a batch with room for itself but not for the waiting gap record is dropped too', async (t) => {
  // Big batches fill the spill, one is dropped; small ones follow. Swept over the room the first
  // drop leaves (in steps smaller than the gap record), so that some runs leave room for a small
  // batch but not for it and the gap record: that batch must not go ahead of the record.
  for (let slack = 0; slack < 8192; slack += 512) {
    const dir = join(t.testdir(), `spill-${slack}`);
    const { spill, shutdown } = await openSpill(t, dir, { maxBytes: 64 * 1024 + slack, memoryMaxBytes: 16 * 1024, segmentBytes: 32 * 1024, whenFull: 'drop-newest' });
    let seq = 0;
    const push = (msg: string) => spill.push({ frames: frame(`line ${seq} ${msg}`), count: 1, origin: { source: '/a.log', start: seq, end: ++seq } });
    while (spill.counters.droppedLines === 0) await push('x'.repeat(8000));
    for (let i = 0; i < 40; i++) await push('small');
    spill.close();
    const got = await drainToEnd(spill);
    const at = got.findIndex((m) => !m.startsWith('line'));
    const sd = Object.fromEntries(parseRfc5424(Buffer.from(got[at])).sd[0].params);
    const seqs = got.map((m) => (m.startsWith('line') ? Number(/^line (\d+)/.exec(m)![1]) : -1));
    const before = seqs.slice(0, at);
    const after = seqs.slice(at + 1);
    t.ok(before.every((s) => s < Number(sd.from)) && after.every((s) => s === -1 || s >= Number(sd.to)), `room ${64 * 1024 + slack}: the lines before the gap record ${sd.from}-${sd.to} are older than its hole, the lines after it newer (${before.slice(-3)} | ${after.slice(0, 3)})`);
    await shutdown();
  }
});

t.test('drop-oldest: the oldest unread segments give way, gap records stand where they were', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { spill, shutdown } = await openSpill(t, dir, { maxBytes: 1024 * 1024, memoryMaxBytes: 16 * 1024, segmentBytes: 128 * 1024, whenFull: 'drop-oldest' });
  const N = 300; // ~2.4 MB into 1 MiB
  const len = 8010;
  for (let i = 0; i < N; i++) await spill.push({ frames: frame(big(i)), count: 1, origin: { source: '/a.log', start: i * len, end: (i + 1) * len } });
  t.ok(spill.counters.droppedLines > 0, `${spill.counters.droppedLines} dropped`);
  t.type(spill.fullSinceMs, 'number', 'dropping the oldest keeps the spill full: only sending frees room');
  spill.close();
  const got = await drainToEnd(spill);
  const seqs = got.filter((m) => m.startsWith('line')).map((m) => Number(/^line (\d+)/.exec(m)![1]));
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'what is kept stays in order');
  t.equal(seqs[seqs.length - 1], N - 1, 'the newest line is kept');
  t.equal(spill.fullSinceMs, undefined, 'not full once sent');
  const gaps = got.filter((m) => !m.startsWith('line')).flatMap((m) => {
    const p = parseRfc5424(Buffer.from(m));
    return p.sd.map((e) => Object.fromEntries(e.params));
  });
  let lines = 0;
  const holes = new Set<number>();
  for (const g of gaps) {
    lines += Number(g.lines);
    t.equal(Number(g.bytes), Number(g.to) - Number(g.from), 'bytes match the offsets');
    for (let o = Number(g.from); o < Number(g.to); o += len) holes.add(o / len);
  }
  t.equal(lines, spill.counters.droppedLines, 'gap records account for every dropped line');
  t.same([...Array(N).keys()].filter((i) => !seqs.includes(i)), [...holes].sort((a, b) => a - b), 'exactly the missing lines');
  await shutdown();
});

t.test('a spill folder others may write in, or owned by another user, is refused', async (t) => {
  const { chmodSync, mkdirSync } = await import('node:fs');
  const { SpillError } = await import('../../src/buffer/spill/io.js');
  const dir = join(t.testdir(), 'spill');
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o770);
  await t.rejects(openSpill(t, dir), new SpillError(`--buffer-dir: ${dir} is writable by its group (mode 0770); chmod 700 it`));
  chmodSync(dir, 0o703);
  await t.rejects(openSpill(t, dir), { name: 'SpillError', message: /writable by every user/ });
  chmodSync(dir, 0o700);
  const { spill, shutdown } = await openSpill(t, dir);
  t.ok(spill, 'opens once only its owner may write in it');
  await shutdown();
});

t.test('a segment replaced by a symlink is not followed: its lines are given up, the rest is sent', async (t) => {
  const { renameSync, symlinkSync } = await import('node:fs');
  const dir = join(t.testdir(), 'spill');
  const a = await openSpill(t, dir, { segmentBytes: 64 * 1024 });
  for (let i = 0; i < 20; i++) await a.spill.push({ frames: frame(big(i)), count: 1 });
  await a.shutdown();
  const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
  t.ok(segs.length >= 2);
  renameSync(join(dir, segs[0]), join(dir, 'elsewhere'));
  symlinkSync(join(dir, 'elsewhere'), join(dir, segs[0]));
  const b = await openSpill(t, dir);
  b.spill.close();
  const got = await drainToEnd(b.spill);
  t.ok(got.length > 0 && got.length < 20, `${got.length} lines from the other segments`);
  t.same(got, [...Array(20).keys()].slice(20 - got.length).map(big), 'the lines after it, in order');
  t.ok(b.lines.some((l) => l.level === 50 && /not a plain file/.test(String(l.msg))), 'logged as an error');
  await b.shutdown();
});

t.test('a damaged length in the last segment is damage, not a torn write: the records after it are sent', async (t) => {
  const dir = join(t.testdir(), 'spill');
  // The second record's length now runs past the end of the file.
  const firstInSeg = await damageLastSegment(t, dir, 6, (data, second) => data.writeUInt32BE(0x00ffffff, second + 4));
  const b = await openSpill(t, dir);
  t.equal(b.spill.counters.tornTails, 0, 'not cut off as a torn write');
  const got = await drainAll(b.spill, 5);
  t.same(got, [...Array(6).keys()].filter((i) => i !== firstInSeg + 1).map(big), 'every other record, in order');
  t.equal(b.spill.counters.corruptSegments, 1, 'the damage is counted');
  await b.shutdown();
});

/**
 * A batch out with the sink (a backed-up socket) when memory fills and the spill starts: before, it
 * held back the soft positions of every batch spilled after it, and a kill -9 then had the next run
 * send the spill and read all of it from the files again (crash-loop runs: 1,254-3,000 lines). Its
 * rest is now copied to the spill first.
 */
async function outWhenSpilling(t: Tap.Test, dir: string, io?: FaultyIo, marks?: Batch['marks'], opts: Partial<SpillOptions> = {}) {
  const a = await openSpill(t, dir, { fsyncIntervalMs: 3_600_000, segmentBytes: 1024 * 1024, io, ...opts });
  const events: string[] = [];
  const push = (i: number, frames = frame(big(i))) => a.spill.push({ frames, count: frames === undefined ? 1 : msgOf(frames).length, onHandedOn: () => events.push(`h${i}`), onSpilled: () => events.push(`s${i}`), ...(i === 0 && marks && { marks }) });
  await push(0, marks ? Buffer.concat([frame('first piece'), frame(big(0))]) : undefined);
  const out = a.spill.take()!;
  return { a, events, out, push };
}

t.test('a batch out with the sink when the spill starts is copied to it: the batches after it are soft; the copy is not sent', async (t) => {
  const { a, events, out, push } = await outWhenSpilling(t, join(t.testdir(), 'spill'));
  for (let i = 1; i < 30; i++) await push(i);
  t.ok(a.spill.counters.spilledBatches >= 20, 'the rest went to disk');
  t.same(events, [...Array(30).keys()].map((i) => `s${i}`), 'all soft, in order: the one out with the sink too (its copy is written)');
  a.spill.handedOn(out);
  t.same(await drainAll(a.spill, 29), [...Array(29).keys()].map((i) => big(i + 1)), 'the copy is read back and not sent: the original was');
  a.spill.close();
  t.same(await drainToEnd(a.spill), [], 'nothing else');
  t.same((await a.shutdown()).bytes, 0, 'the copy is released: nothing left for the next run');
});

t.test('read back while the original is still out, the copy is not sent; kill -9 then: the next run sends the copy, then the rest, once', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const io = new FaultyIo();
  const { a, out, push } = await outWhenSpilling(t, dir, io);
  for (let i = 1; i < 30; i++) await push(i);
  // The sink takes on while the original is out (a socket hands on in order: nothing after it yet).
  const next = a.spill.take() ?? (await a.spill.waitForData(), a.spill.take());
  t.same(msgOf(next!.frames), [big(1)], 'the copy was read back and passed over');
  a.spill.abandon(); // kill -9 with both out: the drain may have neither
  await io.closeAll();
  void out;
  await nextRunSends(t, dir, [...Array(30).keys()].map(big), 'the copy (its only copy now), then the rest: each once');
});

t.test('only what follows the last committed mark is copied', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const io = new FaultyIo();
  const progressed: number[] = [];
  const { a, out, push } = await outWhenSpilling(t, dir, io, { bytes: [frame('first piece').length], progress: (k) => progressed.push(k) });
  a.spill.progress(out, 0);
  t.same(progressed, [0], 'the first piece committed');
  for (let i = 1; i < 30; i++) await push(i);
  a.spill.abandon();
  await io.closeAll();
  const b = await openSpill(t, dir);
  t.same((await drainAll(b.spill, 30)).slice(0, 2), [big(0), big(1)], 'the copy holds the rest after the mark, not the first piece');
  await b.shutdown();
});

t.test('the original handed on, then a clean stop with the spill unsent: the next run does not send the copy', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { a, out, push } = await outWhenSpilling(t, dir);
  for (let i = 1; i < 30; i++) await push(i);
  a.spill.handedOn(out);
  a.spill.close();
  await a.shutdown();
  await nextRunSends(t, dir, [...Array(29).keys()].map((i) => big(i + 1)), 'the rest, once; not the copy');
});

t.test('given back by the sink, then a clean stop: the next run sends the batch once (the copy or the batch itself)', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const { a, out, push } = await outWhenSpilling(t, dir);
  for (let i = 1; i < 30; i++) await push(i);
  a.spill.requeue([out]);
  a.spill.close();
  await a.shutdown();
  await nextRunSends(t, dir, [...Array(30).keys()].map(big), 'each once, in order');
});

t.test('the disk refuses right after the copy, the sink gives the batch back: the batch is sent first, its copy skipped, all in order', async (t) => {
  // Takes the copy's write, then refuses every write (a disk that just filled).
  class FullAfterOneWrite extends FaultyIo {
    writes = -Infinity;
    override check(growing: boolean) {
      if (growing && ++this.writes > 1 && this.writes < 1000) this.failWrites ??= 'ENOSPC';
      return super.check(growing);
    }
  }
  const io = new FullAfterOneWrite();
  const { a, out, push } = await outWhenSpilling(t, join(t.testdir(), 'spill'), io, undefined, { retryMs: 5, fsyncIntervalMs: 20 });
  io.writes = 0;
  const pushes = (async () => {
    for (let i = 1; i < 30; i++) await push(i);
  })();
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => a.spill.problem !== undefined && (clearInterval(poll), resolve()), 5);
  });
  t.equal(a.spill.counters.spilledBatches, 1, 'nothing but the copy went to disk');
  a.spill.requeue([out]);
  io.writes = 1000;
  io.failWrites = undefined;
  await pushes;
  a.spill.close();
  t.same(await drainToEnd(a.spill), [...Array(30).keys()].map(big), 'each once, in order: the batch given back first');
  t.same((await a.shutdown()).bytes, 0, 'nothing left for the next run');
});

t.test('given back, its copy unread, then a clean stop with segments refused: the copy is kept, and the next run sends the batch once', async (t) => {
  // New segments refused (a full disk), while the small cursor file still gets written.
  class SegmentsRefused extends FaultyIo {
    refuse = false;
    override async open(path: string, mode: Parameters<FaultyIo['open']>[1]) {
      if (this.refuse && mode !== 'read' && path.includes('.seg')) throw Object.assign(new Error('ENOSPC (injected)'), { code: 'ENOSPC' });
      return super.open(path, mode);
    }
  }
  const dir = join(t.testdir(), 'spill');
  const io = new SegmentsRefused();
  // Memory just past the batch out: the read-back has no room for its copy, which stays unread.
  const { a, out, push } = await outWhenSpilling(t, dir, io, undefined, { memoryMaxBytes: 8100 });
  const small = (i: number) => `small ${i}`;
  for (let i = 1; i < 30; i++) await push(i, frame(small(i)));
  t.ok(a.spill.counters.spilledBatches > 1, 'the copy and the lines after it went to disk');
  a.spill.requeue([out]);
  io.refuse = true;
  a.spill.close();
  await a.shutdown();
  await io.closeAll();
  await nextRunSends(t, dir, [big(0), ...[...Array(29).keys()].map((i) => small(i + 1))], 'each once, in order: the copy stood for the batch');
});

t.test('the original handed on, its unread copy passed over: the cursor is saved at once, so a kill -9 then does not send the copy', async (t) => {
  const dir = join(t.testdir(), 'spill');
  const io = new FaultyIo();
  // Memory just past the batch out: the read-back has no room for its copy, which stays unread.
  const { a, out, push } = await outWhenSpilling(t, dir, io, undefined, { memoryMaxBytes: 8100 });
  const small = (i: number) => `small ${i}`;
  for (let i = 1; i < 30; i++) await push(i, frame(small(i)));
  a.spill.handedOn(out);
  // The pass-over and the cursor save it asks for (write and rename, no fsync) run on the spill's
  // serial chain: saved once the chain is idle with nothing left dirty. Polling the dirty flag alone
  // raced: it is clear before the pass-over runs, and again from the start of the save's write.
  const spill = a.spill as unknown as { chain: Promise<unknown>; ledger: { cursorQuickDirty: boolean } };
  const since = Date.now();
  let saved = false;
  while (!saved && Date.now() - since < 5000) {
    const tail = spill.chain;
    await tail;
    saved = spill.chain === tail && !spill.ledger.cursorQuickDirty;
    if (!saved) await new Promise((r) => setImmediate(r));
  }
  t.ok(saved, 'the cursor was saved after the copy was passed over');
  a.spill.abandon();
  await io.closeAll();
  await nextRunSends(t, dir, [...Array(29).keys()].map((i) => small(i + 1)), 'the rest, once; not the copy');
});

t.test('drop-oldest: a segment rewritten to gap records whose folder fsync then fails is read as its new bytes', async (t) => {
  // The folder's fsync after a segment was replaced fails once (EIO): the rename is done all the same.
  class DirSyncFailsAfterSegment extends FaultyIo {
    lastRename = '';
    failed = 0;
    override async rename(from: string, to: string) {
      this.lastRename = to;
      return super.rename(from, to);
    }
    override async syncDir(dir: string) {
      if (this.lastRename.endsWith('.seg') && this.failed === 0) {
        this.failed++;
        throw Object.assign(new Error('EIO (injected)'), { code: 'EIO' });
      }
      return super.syncDir(dir);
    }
  }
  const io = new DirSyncFailsAfterSegment();
  const a = await openSpill(t, join(t.testdir(), 'spill'), { whenFull: 'drop-oldest', maxBytes: 96 * 1024, segmentBytes: 32 * 1024, io, retryMs: 5 });
  // Up to the push whose room the rewrite made: no later drop rewrites the segment again (which mended it).
  let n = 0;
  while (n < 40 && io.failed === 0) await a.spill.push({ frames: frame(big(n)), count: 1, origin: { source: 's', start: n * 10, end: ++n * 10 } });
  t.equal(io.failed, 1, 'the fsync after the rewrite failed');
  a.spill.close();
  let timer: NodeJS.Timeout | undefined;
  const got = await Promise.race([drainToEnd(a.spill), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 5000)))]);
  clearTimeout(timer);
  t.ok(got, 'the spill is read to its end (it waited for bytes the segment no longer had)');
  const sent = (got ?? []).filter((m) => m.startsWith('line ')).map((m) => Number(m.split(' ')[1]));
  const named = (got ?? []).filter((m) => !m.startsWith('line ')).flatMap((m) => [...m.matchAll(/offsets (\d+)-(\d+)/g)].map((x) => [Number(x[1]) / 10, Number(x[2]) / 10]));
  const wrong = [...Array(n).keys()].filter((i) => sent.includes(i) === named.some(([f, e]) => i >= f && i < e));
  t.same(wrong, [], 'every line sent or named by a gap record, not both, not neither');
  await a.shutdown();
});

t.test('a batch handed on while the copy before it is written is not copied: never sent twice', async (t) => {
  // The first write after `arm()` waits until `release()`: the sink hands a batch on meanwhile.
  class GatedIo extends FaultyIo {
    private gate: Promise<void> | undefined;
    private reached: () => void = () => {};
    release: () => void = () => {};
    entered: Promise<void> = Promise.resolve();
    arm() {
      this.entered = new Promise((r) => (this.reached = r));
      this.gate = new Promise((r) => (this.release = r));
    }
    override check(growing: boolean) {
      const gate = this.gate;
      if (!growing || !gate) return super.check(growing);
      this.gate = undefined;
      this.reached();
      return gate.then(() => super.check(growing));
    }
  }
  const io = new GatedIo();
  const dir = join(t.testdir(), 'spill');
  const { a, out, push } = await outWhenSpilling(t, dir, io);
  await push(1);
  const second = a.spill.take()!;
  t.same(msgOf(second.frames), [big(1)], 'two batches out with the sink');
  io.arm();
  const pushes = (async () => {
    for (let i = 2; i < 30; i++) await push(i);
  })();
  await io.entered; // the first copy's write is under way
  a.spill.handedOn(second);
  io.release();
  await pushes;
  a.spill.handedOn(out);
  a.spill.close();
  t.same(await drainToEnd(a.spill), [...Array(28).keys()].map((i) => big(i + 2)), 'the rest once; neither copy sent');
  t.same((await a.shutdown()).bytes, 0, 'nothing left for the next run');
});
