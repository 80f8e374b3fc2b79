import { FIRST_SEQ, segName } from './files.js';
import { writeAll, writeFileDurably } from './io.js';
import type { Ledger, Segment } from './ledger.js';

/**
 * Appends records to the tail segment, writes whole segments in front of the others, and fsyncs:
 * what was appended counts as durable (its callbacks run) only after the fsync that covers it.
 * A failed write is cut off again and throws; the caller decides what happens to the batch.
 */
export class SegmentWriter {
  tail: Segment | undefined;
  maxSeq = FIRST_SEQ - 1;
  /**
   * Front segments get numbers below every number used before in this run, never a reused one: a
   * cursor entry saved for a deleted segment must not apply to a new one of the same name.
   */
  minSeq = FIRST_SEQ;
  private afterSync: Array<() => void> = [];
  private dirDirty = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly segmentBytes: number,
  ) {}

  /** Something is written and not yet fsynced, or waits for an fsync. */
  get dirty(): boolean {
    return this.afterSync.length > 0 || this.dirDirty || (this.tail?.dirty ?? false);
  }

  /** Writes one record at the end of the tail segment; `onDurable` runs after the next fsync. */
  async append(parts: Buffer[], onDurable: () => void): Promise<void> {
    const length = parts.reduce((n, p) => n + p.length, 0);
    let seg: Segment | undefined;
    try {
      seg = await this.tailFor(length);
      await writeAll(seg.writer!, parts, seg.size);
    } catch (err) {
      // A partial record would hide every later one: cut it off; the next write starts a new segment.
      if (seg) {
        await seg.writer?.truncate(seg.size).catch(() => {});
        await this.seal(seg).catch(() => {});
      }
      throw err;
    }
    seg.dirty = true;
    this.ledger.grow(seg, length);
    this.afterSync.push(onDurable);
  }

  /** A whole new segment that sorts before every other; durable when this resolves. */
  async writeFront(data: Buffer): Promise<Segment> {
    const seq = --this.minSeq;
    await writeFileDurably(this.ledger.io, this.ledger.dir, segName(seq), data);
    const seg = this.ledger.newSegment(seq, 0);
    this.ledger.segs.unshift(seg);
    this.ledger.grow(seg, data.length);
    return seg;
  }

  private async tailFor(length: number): Promise<Segment> {
    const cur = this.tail;
    if (cur && !cur.sealed && (cur.size === 0 || cur.size + length <= this.segmentBytes)) return cur;
    if (cur && !cur.sealed) await this.seal(cur);
    const seg = this.ledger.newSegment(this.maxSeq + 1, 0);
    seg.writer = await this.ledger.io.open(this.ledger.path(seg), 'create');
    this.maxSeq++;
    seg.sealed = false;
    this.dirDirty = true;
    this.ledger.segs.push(seg);
    this.tail = seg;
    return seg;
  }

  /** fsync of the tail (and of the folder for new files), then the callbacks that waited for it. */
  async syncNow(): Promise<void> {
    const waiting = this.afterSync.splice(0);
    try {
      if (this.tail?.dirty && this.tail.writer) {
        this.tail.dirty = false;
        await this.tail.writer.sync();
      }
      if (this.dirDirty) {
        this.dirDirty = false;
        await this.ledger.io.syncDir(this.ledger.dir);
      }
    } catch (err) {
      // Nothing is committed on a failed fsync; the next one tries again.
      this.afterSync.unshift(...waiting);
      if (this.tail) this.tail.dirty = true;
      this.dirDirty = true;
      throw err;
    }
    for (const run of waiting) run();
  }

  /** No more appends to `seg`: synced, closed, and deletable once all sent. */
  async seal(seg: Segment): Promise<void> {
    if (seg.sealed) return;
    if (this.tail === seg) await this.syncNow();
    seg.sealed = true;
    await seg.writer?.close().catch(() => {});
    seg.writer = undefined;
    if (this.tail === seg) this.tail = undefined;
    this.ledger.maybeRemove(seg);
  }
}
