import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import type { RateLimitedLog, Logger } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import { nextBatchId } from '../../batch.js';
import { segName } from './files.js';
import { GapLedger, gapFrames, type GapRange } from './gap.js';
import { writeFileDurably } from './io.js';
import { Item, type Counters, type Ledger, type Place, type Segment } from './ledger.js';
import type { Ticket } from './order.js';
import type { SegmentReader } from './reader.js';
import { encodeRecord } from './disk-record.js';

export type WhenFull = 'block' | 'drop-oldest' | 'drop-newest';

export interface PolicyOptions {
  whenFull: WhenFull;
  gapFramer: Rfc5424Framer;
  stats: Stats;
  log: Logger;
  dir: string;
  maxBytes: number;
}

/**
 * --when-full drop-newest and drop-oldest: what is dropped is counted, and gap records (RFC 5424,
 * MSGID "gap") stand in the stream where the lines were, naming exactly which bytes of which source.
 */
export class FullPolicy {
  private readonly gaps = new GapLedger();
  /** Commits of dropped lines: they run when the gap record that names them is safe. */
  private gapTickets: Ticket[] = [];
  /** What each gap item taken names, should it be given back. */
  private readonly taken = new WeakMap<Item, GapRange[]>();

  constructor(
    private readonly opts: PolicyOptions,
    private readonly counters: Counters,
    private readonly limited: RateLimitedLog,
  ) {}

  get gapPending(): boolean {
    return !this.gaps.empty;
  }

  private account(ranges: GapRange[], lines: number): void {
    let bytes = 0;
    for (const r of ranges) bytes += r.bytes;
    this.counters.droppedLines += lines;
    this.counters.droppedBytes += bytes;
    this.opts.stats.addDropped('buffer-full', lines);
  }

  /** Damaged bytes in a dropped segment: named by a gap record as bytes of an unknown source, and counted. */
  private damaged(drops: GapLedger, bytes: number): void {
    drops.add(undefined, 0, bytes);
    this.counters.skippedBytes += bytes;
    this.opts.stats.spillCorrupt++;
  }

  /** Drops a batch being pushed; its gap record follows with takeGap(). */
  drop(item: Item): void {
    const release = item.release;
    item.release = undefined;
    release?.();
    this.counters.droppedLines += item.count;
    this.counters.droppedBytes += item.origin ? item.origin.end - item.origin.start : item.frames.length;
    this.opts.stats.addDropped('buffer-full', item.count);
    this.gaps.add(item.origin, item.count, item.frames.length);
    // The source's position moves past the dropped lines only when the gap record is safe.
    this.gapTickets.push(...item.tickets);
    this.limited.warn('full', { dir: this.opts.dir, maxBytes: this.opts.maxBytes, policy: this.opts.whenFull }, 'spill full: dropping lines');
  }

  /** The gap records for what drop() dropped since the last call. */
  takeGap(): Item {
    const ranges = this.gaps.take();
    const item = this.gapItem(ranges, this.opts.whenFull);
    item.tickets = this.gapTickets.splice(0);
    this.taken.set(item, ranges);
    this.opts.log.warn({ gaps: ranges }, 'lines dropped; gap records sent in their place');
    return item;
  }

  /**
   * A gap item from takeGap() that has no room after all: its ranges wait again, merged with what
   * is dropped meanwhile, so that a full memory holds no gap record per drop.
   */
  giveBack(item: Item): void {
    this.gaps.restore(this.taken.get(item) ?? []);
    this.gapTickets.unshift(...item.tickets);
    this.counters.gapRecords -= item.count;
  }

  private gapItem(ranges: GapRange[], policy: WhenFull): Item {
    const { frames, count } = gapFrames(this.opts.gapFramer, ranges, `buffer full (--when-full ${policy})`);
    this.counters.gapRecords += count;
    return new Item(nextBatchId(), frames, count, undefined);
  }

  /**
   * drop-oldest on a segment nothing was read from: it is rewritten to hold only gap records for
   * what it held (records without an origin, earlier gap records among them, are kept). Returns
   * the bytes freed.
   */
  async rewriteUnread(victim: Segment, ledger: Ledger, reader: SegmentReader): Promise<number> {
    const ledgerOfDrops = new GapLedger();
    const keep: Buffer[] = [];
    let lines = 0;
    const records = reader.records(victim, 0);
    let r = await records.next();
    for (; !r.done; r = await records.next()) {
      const rec = r.value;
      if (rec.origin) {
        ledgerOfDrops.add(rec.origin, rec.count, rec.frames.length);
        lines += rec.count;
      } else keep.push(encodeRecord(rec.frames, rec.count, undefined, rec.id ?? nextBatchId(), rec.keys));
    }
    if (r.value < victim.size) this.damaged(ledgerOfDrops, victim.size - r.value);
    await victim.reader?.close();
    victim.reader = undefined;
    const ranges = ledgerOfDrops.take();
    const gap = this.gapItem(ranges, 'drop-oldest');
    keep.push(encodeRecord(gap.frames, gap.count, undefined, gap.id));
    const data = Buffer.concat(keep);
    let freed = 0;
    // Replaced, the segment is its new bytes, though the folder's fsync may fail after: a ledger left
    // at the old size waited for bytes the file no longer had (the spill's model test).
    await writeFileDurably(ledger.io, ledger.dir, segName(victim.seq), data, () => {
      freed = victim.size - data.length;
      ledger.diskBytes -= freed;
      ledger.unread -= freed;
      victim.size = data.length;
      victim.gapsOnly = true;
      this.account(ranges, lines);
      this.limited.warn('drop-oldest', { gaps: ranges }, 'spill full: dropped the oldest spilled lines; gap records sent in their place');
    });
    return freed;
  }

  /**
   * drop-oldest on the segment being read back: the batches of it waiting in memory and the rest
   * of the file are dropped, and one gap item stands where the first of them stood. `memory` is
   * what waits in memory (not out with the sink), in order; returns it without the dropped batches.
   * The segment is deleted once the batches of it out with the sink are handed on and the gap
   * record is safe (handed on, or durable in the spill): a crash before that sends them again.
   */
  async dropReadBack(victim: Segment, memory: Item[], ledger: Ledger, reader: SegmentReader, free: (item: Item) => void): Promise<{ memory: Item[]; freedMemory: number }> {
    const covers: Place[] = [];
    const drops = new GapLedger();
    let lines = 0;
    let freedMemory = 0;
    let at = -1;
    const kept: Item[] = [];
    for (const item of memory) {
      if (item.place?.seg !== victim) {
        kept.push(item);
        continue;
      }
      if (at === -1) at = kept.length;
      drops.add(item.origin, item.count, item.frames.length);
      if (item.origin) lines += item.count;
      freedMemory += item.memory;
      covers.push(item.place);
      free(item);
    }
    const records = reader.records(victim, victim.readOff);
    let r = await records.next();
    for (; !r.done; r = await records.next()) {
      drops.add(r.value.origin, r.value.count, r.value.frames.length);
      if (r.value.origin) lines += r.value.count;
    }
    if (r.value < victim.size) this.damaged(drops, victim.size - r.value);
    covers.push(reader.pass(victim, victim.size - victim.readOff));
    const ranges = drops.take();
    if (ranges.length === 0) {
      for (const p of covers) ledger.release(p);
      return { memory, freedMemory: 0 };
    }
    const gap = this.gapItem(ranges, 'drop-oldest');
    gap.covers = covers;
    // Nothing of it waits in memory: the gap goes after what is older (batches given back by the sink).
    if (at === -1) at = kept.length;
    kept.splice(at, 0, gap);
    this.account(ranges, lines);
    this.limited.warn('drop-oldest', { gaps: ranges }, 'spill full: dropped the oldest lines, read back ones included; gap records sent in their place');
    return { memory: kept, freedMemory: freedMemory - gap.memory };
  }
}
