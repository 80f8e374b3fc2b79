import fc from 'fast-check';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import type { TakenBatch } from '../../src/batch.js';
import { SpillBuffer, type WhenFull } from '../../src/buffer/spill/spill-buffer.js';
import { FaultyIo } from './faulty-io.js';
import { parseRfc5424, splitOctetCounted } from './rfc5424.js';

/**
 * The spill against a model: a source that numbers its lines and, after a crash, reads again from
 * its committed position; a sink that takes, hands on in order, or gives back. Whatever happens
 * (drain down and up, restarts, a crash at any disk operation, flipped bytes, a disk that fills and
 * empties, short writes), every line reaches the drain in order, exactly once (at least once after
 * a crash), or is named by a gap record; a line lost any other way fails the run. Memory stays
 * within --memory-max-bytes (plus one batch).
 */

const MEMORY = 1024 * 1024;
const MAX_BATCH = 48 * 1024;
const quiet = process.env.SPILL_MODEL_LOG ? pino({ level: process.env.SPILL_MODEL_LOG }, process.stderr) : pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));
const framer = new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 65536 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const frameOf = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);

export type Cmd =
  | { k: 'push'; size: number }
  | { k: 'burst'; n: number; size: number }
  | { k: 'take'; n: number }
  | { k: 'handOn'; n: number }
  | { k: 'requeue' }
  | { k: 'drain'; up: boolean }
  | { k: 'wait' }
  | { k: 'disk'; code: string | undefined }
  | { k: 'short'; on: boolean }
  | { k: 'restart' }
  | { k: 'crash'; after: number }
  | { k: 'corrupt'; at: number };

export const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ k: fc.constant('push' as const), size: fc.integer({ min: 100, max: MAX_BATCH }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('burst' as const), n: fc.integer({ min: 2, max: 24 }), size: fc.integer({ min: 100, max: MAX_BATCH }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('take' as const), n: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('handOn' as const), n: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'requeue' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('drain' as const), up: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ k: 'wait' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('disk' as const), code: fc.constantFrom(undefined, undefined, 'ENOSPC', 'EIO', 'EROFS', 'EDQUOT') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('short' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'restart' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('crash' as const), after: fc.integer({ min: 1, max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('corrupt' as const), at: fc.nat() }) },
);

export interface Outcome {
  delivered: number[];
  /** The run (between restarts) each delivery happened in. */
  epochs: number[];
  /** Each gap record's hole [from, to), and how many lines were delivered before it. */
  gaps: Array<[number, number, number]>;
  crashed: boolean;
  /** A crash, or a restart while the disk failed: what was written but not fsynced is read again (duplicates, never losses). */
  again: boolean;
  corrupted: boolean;
  skipped: number;
  total: number;
  maxMemory: number;
  /** The spill was seen full, and seen unwritable. */
  full: boolean;
  stuck: boolean;
}

export async function run(dir: string, whenFull: WhenFull, cmds: Cmd[]): Promise<Outcome> {
  const out: Outcome = { delivered: [], epochs: [], gaps: [], crashed: false, again: false, corrupted: false, skipped: 0, total: 0, maxMemory: 0, full: false, stuck: false };
  let io = new FaultyIo();
  let epoch = 0;
  let committed = 0;
  let next = 0;
  let pending: Promise<void> | undefined;
  let held: TakenBatch[] = [];
  let up = true;
  let corruptAt: number | undefined;
  const open = async () => {
    for (;;) {
      try {
        const s = await SpillBuffer.open({
          dir,
          maxBytes: 320 * 1024,
          memoryMaxBytes: MEMORY,
          segmentBytes: 64 * 1024,
          fsyncIntervalMs: 5,
          whenFull,
          log: quiet,
          stats: new Stats(),
          gapFramer: framer,
          io,
          retryMs: 5,
        });
        io.onCrash = () => s.abandon();
        return s;
      } catch {
        // Cannot even take the lock on a failing disk: the operator makes room, then it starts.
        io.failWrites = undefined;
      }
    }
  };
  let spill = await open();
  const deliver = (b: TakenBatch) => {
    for (const f of splitOctetCounted(b.frames).frames) {
      const s = f.toString();
      if (s.startsWith('L')) {
        out.delivered.push(Number(s.slice(1, s.indexOf(' '))));
        out.epochs.push(epoch);
      }
      else for (const e of parseRfc5424(f).sd) {
        const p = Object.fromEntries(e.params);
        out.gaps.push([Number(p.from), Number(p.to), out.delivered.length]);
      }
    }
    spill.handedOn(b);
  };
  const restart = async (clean: boolean) => {
    if (io.failWrites) out.again = true;
    if (clean) {
      spill.requeue(held);
      held = [];
      await spill.shutdown();
      if (io.crashed) out.crashed = out.again = true; // the crash came during the shutdown
    } else {
      io.crashed = true;
      spill.abandon();
      await sleep(2); // let the dead instance's chain fail through
      out.crashed = out.again = true;
    }
    out.skipped += spill.counters.skippedBytes + spill.counters.corruptSegments + spill.counters.tornTails;
    if (corruptAt !== undefined) {
      const segs = readdirSync(dir).filter((n) => n.endsWith('.seg')).sort();
      if (segs.length > 0) {
        const file = join(dir, segs[corruptAt % segs.length]);
        const data = readFileSync(file);
        if (data.length > 0) {
          data[corruptAt % data.length] ^= 0x5a;
          writeFileSync(file, data);
          out.corrupted = true;
        }
      }
      corruptAt = undefined;
    }
    epoch++;
    held = [];
    pending = undefined;
    next = committed; // the source reads again from its committed position
    const failWrites = io.failWrites;
    const shortWrites = io.shortWrites;
    // Node 26 fails a process whose FileHandle is left to the garbage collector.
    await io.closeAll();
    io = new FaultyIo();
    io.failWrites = failWrites;
    io.shortWrites = shortWrites;
    spill = await open();
  };
  const push = () => {
    const seq = next++;
    out.total = Math.max(out.total, next);
    const ep = epoch;
    const size = sizes.get(seq) ?? 100;
    const p = spill.push({
      frames: frameOf(`L${seq} ${'x'.repeat(size)}`),
      count: 1,
      origin: { source: 's', start: seq, end: seq + 1 },
      onHandedOn: () => {
        if (ep === epoch) committed = Math.max(committed, seq + 1);
      },
    });
    return p;
  };
  const sizes = new Map<number, number>();
  for (const c of cmds) {
    if (io.crashed) await restart(false);
    switch (c.k) {
      case 'push':
      case 'burst':
        for (let i = 0; i < (c.k === 'burst' ? c.n : 1) && !pending; i++) {
          if (!sizes.has(next)) sizes.set(next, c.size);
          const ep = epoch;
          const p = push().then(() => {
            if (ep === epoch && pending === p) pending = undefined;
          });
          pending = p;
          await Promise.race([p, sleep(0)]);
        }
        break;
      case 'take':
        for (let i = 0; up && i < c.n; i++) {
          const b = spill.take();
          if (!b) break;
          held.push(b);
        }
        break;
      case 'handOn':
        for (const b of held.splice(0, c.n)) deliver(b);
        break;
      case 'requeue':
        spill.requeue(held);
        held = [];
        break;
      case 'drain':
        if (!c.up) {
          spill.requeue(held);
          held = [];
        }
        up = c.up;
        break;
      case 'wait':
        await sleep(7);
        break;
      case 'disk':
        io.failWrites = c.code;
        break;
      case 'short':
        io.shortWrites = c.on;
        break;
      case 'restart':
        await restart(!pending && !io.crashed);
        break;
      case 'crash':
        io.crashAt = io.ops + c.after;
        break;
      case 'corrupt':
        corruptAt = c.at;
        break;
    }
    out.maxMemory = Math.max(out.maxMemory, spill.memoryBytes);
    out.full ||= spill.fullSinceMs !== undefined;
    out.stuck ||= spill.problem !== undefined;
  }
  // The end: the disk heals, the drain is up, the source reads to the end of what it had, then stops.
  if (io.crashed) await restart(false);
  io.failWrites = undefined;
  io.shortWrites = false;
  io.crashAt = Infinity;
  spill.requeue(held);
  held = [];
  const total = out.total;
  const sink = (async () => {
    for (;;) {
      const b = spill.take();
      if (b) {
        deliver(b);
        out.maxMemory = Math.max(out.maxMemory, spill.memoryBytes);
        continue;
      }
      if (spill.finished) return;
      await spill.waitForData();
    }
  })();
  if (pending) await pending;
  while (next < total) await push();
  spill.close();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sink, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`the sink did not finish: ${describe(spill)}`)), 20_000)))]);
  clearTimeout(timer);
  out.skipped += spill.counters.skippedBytes + spill.counters.corruptSegments + spill.counters.tornTails;
  await spill.shutdown();
  await io.closeAll();
  return out;
}

export function check(o: Outcome, whenFull: WhenFull): string | undefined {
  const named = new Set<number>();
  for (const [from, to] of o.gaps) for (let s = from; s < to; s++) named.add(s);
  const seen = new Map<number, number>();
  for (const s of o.delivered) seen.set(s, (seen.get(s) ?? 0) + 1);
  if (!o.again) {
    for (const [s, n] of seen) if (n > 1) return `line ${s} delivered ${n} times without a crash`;
  }
  // Without a crash, strictly in order. After one, the spill sends again what its cursor had not
  // recorded as sent yet, and the source reads again from its committed position: at least once.
  if (!o.again) {
    for (let i = 1; i < o.delivered.length; i++) {
      if (o.delivered[i] <= o.delivered[i - 1]) return `line ${o.delivered[i]} delivered after line ${o.delivered[i - 1]}`;
    }
  }
  if (whenFull === 'block' && named.size > 0) return 'gap records with --when-full block';
  // A gap record stands where its hole is: no line overtakes it, nor does it overtake one.
  if (!o.again) {
    for (const [from, to, at] of o.gaps) {
      const early = o.delivered.slice(at).find((s) => s < from);
      if (early !== undefined) return `line ${early} delivered after the gap record for ${from}-${to}`;
      const late = o.delivered.slice(0, at).find((s) => s >= to);
      if (late !== undefined) return `line ${late} delivered before the gap record for ${from}-${to}`;
    }
  }
  for (let s = 0; s < o.total; s++) {
    if (seen.has(s) && named.has(s) && !o.again) return `line ${s} both delivered and named by a gap record`;
    if (!seen.has(s) && !named.has(s) && !(o.corrupted && o.skipped > 0)) return `line ${s} lost silently`;
  }
  // One batch past --memory-max-bytes is by design (a batch is never split; 64: its frame's header).
  if (o.maxMemory > MEMORY + MAX_BATCH + 64) return `memory ${o.maxMemory} past ${MEMORY}`;
  return undefined;
}


/** The buffer's inner state, for a failure message. */
function describe(spill: SpillBuffer): string {
  const x = spill as unknown as Record<string, any>;
  const segs = x.ledger.segs.map((s: Record<string, unknown>) => ({ seq: s.seq, size: s.size, readOff: s.readOff, acked: s.acked, sealed: s.sealed, removed: s.removed, places: (s.places as { length: number }).length }));
  const m = x.mem;
  return JSON.stringify({ front: m.front.length, queue: m.queue.length, overflow: m.overflow.length, out: m.out, memBytes: m.bytes, overflowBytes: m.overflowBytes, pendingOps: x.pendingOps, unread: x.ledger.unread, loading: x.loading, problem: spill.problem, closed: x.isClosed, stopped: x.stopped, gapPending: x.policy.gapPending, finished: spill.finished, dataWaiters: x.dataWaiters.length, roomWaiters: x.roomWaiters.length, segs });
}
