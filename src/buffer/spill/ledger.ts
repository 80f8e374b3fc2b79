import { join } from 'node:path';
import type { Logger } from '../../telemetry/log.js';
import { memoryOf, type Batch, type MessageKeys } from '../../batch.js';
import { moveAside, segName, writeCursor } from './files.js';
import type { SpillFile, SpillIo } from './io.js';
import { Deque, type Ticket } from './order.js';
import type { Origin } from './disk-record.js';

/** A record's place in a segment; the segment is deleted once every record in it is released. */
export interface Place {
  seg: Segment;
  end: number;
  done: boolean;
}

export interface Segment {
  seq: number;
  /** Bytes of complete records in the file. */
  size: number;
  /** Where the reader goes on. */
  readOff: number;
  /** Every record before this was handed on (or rewritten elsewhere, or dropped): the cursor. */
  acked: number;
  sealed: boolean;
  places: Deque<Place>;
  writer?: SpillFile;
  reader?: SpillFile;
  dirty: boolean;
  corrupt: boolean;
  removed: boolean;
  /** Rewritten by drop-oldest: holds only gap records (and lines without an origin), nothing to drop. */
  gapsOnly?: boolean;
}

/** A batch as the buffer holds it; the sink gets these and gives them back. */
export class Item implements Batch {
  /** Source commits waiting for this batch to be handed on or made durable. */
  tickets: Ticket[] = [];
  /** Set when the batch was read back from the spill: it is durable there. */
  place: Place | undefined;
  /** A gap item's: the places of what it names, released only once the gap record is safe. */
  covers: Place[] | undefined;
  readonly at = Date.now();
  /** The source's Batch.release: the frames' memory, given back once they are sent or on disk. */
  release: (() => void) | undefined;
  /** The source's Batch.marks (not kept on disk). */
  marks: Batch['marks'];
  /** Marks committed so far (the sink wrote the pieces before them). */
  progressed = 0;
  /** Out with the sink when the spill started: the rest of it was written to the spill too (out-copies.ts). */
  copied = false;
  /** Given back by the sink, its copy not read yet: durable through the copy, as a read-back batch is through its place. */
  covered = false;
  /** What it counts against --memory-max-bytes while in memory (Batch.memory). */
  readonly memory: number;
  constructor(
    readonly id: number,
    readonly frames: Buffer,
    readonly count: number,
    readonly origin: Origin | undefined,
    readonly keys?: MessageKeys,
    memory?: number,
  ) {
    this.memory = memoryOf({ frames, memory });
  }
}

export const newCounters = () => ({ spilledBatches: 0, droppedLines: 0, droppedBytes: 0, gapRecords: 0, corruptSegments: 0, tornTails: 0, skippedBytes: 0 });
export type Counters = ReturnType<typeof newCounters>;

/**
 * What is on disk and how far it was handed on: the segments in stream order, the bytes in them,
 * the bytes not read back yet, and the cursor file that survives a restart.
 */
export class Ledger {
  segs: Segment[] = [];
  diskBytes = 0;
  unread = 0;
  /** Segments all sent whose files are being deleted: number → size. */
  private readonly deleting = new Map<number, number>();
  /** The cursor changed since its last fsynced save. */
  cursorDirty = false;
  /** The cursor changed since its last save of any kind. */
  cursorQuickDirty = false;

  constructor(
    readonly io: SpillIo,
    readonly dir: string,
    private readonly log: Logger,
    /** A segment all sent and read: its file is to be deleted (on the serial chain). */
    private readonly onRemoved: (seg: Segment) => void,
  ) {}

  path(seg: Segment): string {
    return join(this.dir, segName(seg.seq));
  }

  newSegment(seq: number, size: number): Segment {
    return { seq, size, readOff: 0, acked: 0, sealed: true, places: new Deque(), dirty: false, corrupt: false, removed: false };
  }

  /** Bytes in the segment files not yet handed on. */
  get spilledBytes(): number {
    let n = 0;
    for (const s of this.segs) n += s.size - s.acked;
    return n;
  }

  /** The segment the reader goes on with. */
  nextUnread(): Segment | undefined {
    return this.segs.find((s) => s.readOff < s.size);
  }

  advance(seg: Segment, by: number): void {
    seg.readOff += by;
    this.unread -= by;
  }

  /** Bytes written (or cut off) at the end of `seg`. */
  grow(seg: Segment, by: number): void {
    seg.size += by;
    this.diskBytes += by;
    this.unread += by;
  }

  release(place: Place): void {
    place.done = true;
    const seg = place.seg;
    while (seg.places.length > 0 && seg.places.peek()!.done) seg.acked = seg.places.shift()!.end;
    this.cursorDirty = this.cursorQuickDirty = true;
    this.maybeRemove(seg);
  }

  maybeRemove(seg: Segment): void {
    if (seg.removed || !seg.sealed || seg.acked < seg.size || seg.readOff < seg.size) return;
    seg.removed = true;
    this.segs.splice(this.segs.indexOf(seg), 1);
    this.diskBytes -= seg.size;
    this.cursorDirty = this.cursorQuickDirty = true;
    // Until the file is gone, the cursor says it was all sent: a crash in between costs no resend.
    this.deleting.set(seg.seq, seg.size);
    this.onRemoved(seg);
  }

  async deleteFile(seg: Segment): Promise<void> {
    await seg.reader?.close().catch(() => {});
    seg.reader = undefined;
    if (seg.corrupt) {
      const aside = await moveAside(this.io, this.dir, seg.seq);
      this.log.warn({ segment: aside }, 'damaged spill segment moved aside after its readable records were sent');
    } else await this.io.unlink(this.path(seg)).catch((err) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    this.deleting.delete(seg.seq);
    this.cursorDirty = this.cursorQuickDirty = true;
  }

  /**
   * Saves the cursor: durably, or `quick` (no fsync: enough after kill -9 for a restart not to send
   * again what was handed on from the spill; fsync stays on the interval).
   */
  async saveCursor(quick = false): Promise<void> {
    if (quick ? !this.cursorQuickDirty : !this.cursorDirty) return;
    const wasDirty = this.cursorDirty;
    this.cursorQuickDirty = false;
    if (!quick) this.cursorDirty = false;
    const acked = new Map<number, number>();
    for (const s of this.segs) if (s.acked > 0) acked.set(s.seq, s.acked);
    for (const [seq, size] of this.deleting) acked.set(seq, size);
    try {
      await writeCursor(this.io, this.dir, acked, quick);
    } catch (err) {
      this.cursorQuickDirty = true;
      this.cursorDirty = wasDirty || !quick;
      throw err;
    }
  }
}
