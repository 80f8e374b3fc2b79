import type { Logger } from '../../telemetry/log.js';
import type { DiskState } from './disk-state.js';
import type { Counters, Item, Ledger } from './ledger.js';
import { durable, type MemoryQueue } from './memory-queue.js';
import { encodeRecord, encodeRecordParts } from './disk-record.js';
import type { SegmentWriter } from './writer.js';
import { OutCopies } from './out-copies.js';

export interface SpillerHooks {
  /** The batch is durable: its commits may run, its old place in a segment is free. */
  settle(item: Pick<Item, 'id' | 'tickets' | 'place' | 'covers'>): void;
  /** The batch is in the spill, not yet fsynced: its commits wait for the fsync or for its record to be handed on. */
  spilled(item: Item): void;
  /** The batch's frames will not be read again. */
  free(item: Item): void;
  /** Memory was freed. */
  room(): void;
  /** Copies of batches out with the sink when the spill starts. */
  copies: OutCopies;
}

/**
 * Moves batches from memory to the spill: one at its end, the overflow, or all that memory holds
 * (in front of the spill when it holds unread records). What cannot be written stays in memory,
 * where the order puts it, and the disk is marked unwritable.
 */
export class Spiller {
  /** 'spilling to disk' was logged, and 'caught up' not yet. */
  announced = false;

  constructor(
    private readonly mem: MemoryQueue,
    private readonly ledger: Ledger,
    private readonly writer: SegmentWriter,
    private readonly disk: DiskState,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly dir: string,
    private readonly hooks: SpillerHooks,
  ) {}

  /** Writes one batch at the end of the spill; false (and the spill marked unwritable) when it cannot. */
  async append(item: Item): Promise<boolean> {
    if (!this.disk.canWrite) return false;
    // Keep only what completion needs: holding the frames until the fsync would cost memory.
    const done = { id: item.id, tickets: item.tickets, place: item.place, covers: item.covers };
    try {
      await this.writer.append(encodeRecordParts(item.frames, item.count, item.origin, item.id, item.keys), () => this.hooks.settle(done));
    } catch (err) {
      this.disk.failed(err);
      return false;
    }
    this.disk.succeeded();
    this.hooks.spilled(item);
    this.hooks.free(item);
    this.counters.spilledBatches++;
    return true;
  }

  /** Appends copies of the batches out with the sink (OutCopies), in the order it took them. */
  private async copyOut(): Promise<void> {
    const out = [...this.mem.outItems];
    if (out.some((i) => i.place)) return;
    for (const item of out) {
      // Handed on (or given back) while the copies before it were written: nothing to copy, and
      // its frames may be back in their slab.
      if (!this.mem.outItems.has(item)) continue;
      const copy = OutCopies.copyOf(item);
      if (!copy) continue;
      this.hooks.copies.writing(item);
      const tail = this.writer.tail;
      const before = tail?.size ?? 0;
      const ok = await this.append(copy);
      // Appended to the tail, or as the first record of a new one.
      const seg = this.writer.tail;
      this.hooks.copies.written(item, ok && seg ? { seg, start: seg === tail ? before : 0, end: seg.size } : undefined);
      if (!ok) return;
    }
  }

  /** Writes the overflow after the spill, in order, while it can; true when it is empty. */
  async flushOverflow(): Promise<boolean> {
    while (this.mem.overflow.length > 0) {
      if (!(await this.append(this.mem.overflow[0]))) return false;
      this.mem.written();
      this.hooks.room();
    }
    return true;
  }

  /**
   * Moves every batch memory holds to the spill, in order: appended when nothing is spilled ahead
   * of them, else as a new segment that sorts before the others. Batches that were read back from
   * the spill are rewritten too (the order must hold) and their old places released once durable.
   */
  async writeMemory(why: string): Promise<void> {
    const mem = this.mem;
    const all = mem.takeAll();
    // A batch the sink gave back whose copy is in the spill: read back, the copy's place is its place; not yet, the copy covers it.
    for (const item of all) if (item.copied) this.hooks.copies.adopt(item);
    const first = all.findIndex((i) => !durable(i));
    if (first === -1) return mem.putBack(all);
    if (!this.announced) {
      this.announced = true;
      this.log.info({ dir: this.dir, why }, 'spilling to disk');
    }
    // They count in memory until they are written: pushes meanwhile must not take their room.
    if (this.ledger.unread === 0) {
      // What comes before the first batch that is durable nowhere was read back from the spill and
      // is still there, in a segment before the one appended to: it stays in memory, in front.
      mem.putBack(all.slice(0, first));
      // Before them in the stream: the batches out with the sink (when nothing read back is ahead).
      if (first === 0) await this.copyOut();
      const items = all.slice(first);
      let k = 0;
      while (k < items.length && (await this.append(items[k]))) mem.bytes -= items[k++].memory;
      // Those written are in the spill now: the rest comes after it.
      if (k === 0) mem.putBack(items);
      else
        for (const item of items.slice(k).reverse()) {
          mem.bytes -= item.memory;
          mem.toOverflow(item, true);
        }
      return;
    }
    // A front segment sorts before every other: what memory read back from those goes into it
    // too, or the next run would read it after what follows it.
    const items = all;
    if (!this.disk.canWrite) return mem.putBack(items);
    try {
      await this.writer.writeFront(Buffer.concat(items.map((i) => encodeRecord(i.frames, i.count, i.origin, i.id, i.keys))));
    } catch (err) {
      this.disk.failed(err);
      return mem.putBack(items);
    }
    this.disk.succeeded();
    for (const item of items) {
      if (item.covered) this.hooks.copies.rewritten(item);
      mem.bytes -= item.memory;
      this.hooks.free(item);
      this.hooks.settle(item);
    }
  }
}
