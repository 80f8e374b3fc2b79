import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SLAB_BYTES } from '../../framing/frame-writer.js';
import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import { RateLimitedLog, type Logger } from '../../ops/log.js';
import type { Stats } from '../../ops/stats.js';
import type { Batch, BatchBuffer } from '../../record.js';
import { FIRST_SEQ, listSegments, lockDir, moveAside, readCursor, segName, syncDir, writeCursor, writeFileDurably } from './files.js';
import { GapLedger, gapFrames } from './gap.js';
import { Deque, InOrder, type Ticket } from './order.js';
import { ReadSlabs } from './read-slabs.js';
import { encodeRecord, encodeRecordParts, findMagic, HEADER_BYTES, MAGIC, MAX_BODY_BYTES, parseRecord, type Origin, type Parsed } from './record.js';

export type WhenFull = 'block' | 'drop-oldest' | 'drop-newest';

export interface SpillOptions {
  dir: string;
  /** Bound of the segment files together. */
  maxBytes: number;
  /** Bound of what is held in memory: queued, read back from the spill, and out with the sink. */
  memoryMaxBytes: number;
  /** Default: an eighth of maxBytes, between 64 KiB and 64 MiB. */
  segmentBytes?: number;
  fsyncIntervalMs: number;
  whenFull: WhenFull;
  log: Logger;
  stats: Stats;
  /** Formats gap records (APP-NAME auditfwd). */
  gapFramer: Rfc5424Framer;
}

/** A record's place in a segment; the segment is deleted once every record in it is released. */
interface Place {
  seg: Segment;
  end: number;
  done: boolean;
}

interface Segment {
  seq: number;
  /** Bytes of complete records in the file. */
  size: number;
  /** Where the reader goes on. */
  readOff: number;
  /** Every record before this was handed on (or rewritten elsewhere): the cursor. */
  acked: number;
  sealed: boolean;
  places: Deque<Place>;
  writer?: FileHandle;
  reader?: FileHandle;
  dirty: boolean;
  corrupt: boolean;
  removed: boolean;
  /** Rewritten by drop-oldest: holds only gap records (and lines without an origin), nothing to drop. */
  gapsOnly?: boolean;
}

/** A batch as the buffer holds it; the sink gets these and gives them back. */
class Item implements Batch {
  /** Source commits waiting for this batch to be handed on or made durable. */
  tickets: Ticket[] = [];
  /** Set when the batch was read back from the spill: it is durable there. */
  place: Place | undefined;
  readonly at = Date.now();
  /** The source's Batch.release: the frames' memory, given back once they are sent or on disk. */
  release: (() => void) | undefined;
  constructor(
    readonly frames: Buffer,
    readonly count: number,
    readonly origin: Origin | undefined,
  ) {}
}

/** A source's batch is at most a frame-writer slab: with its record header it fits one window. */
const READ_WINDOW = SLAB_BYTES + 64 * 1024;
const RETRY_MS = 1000;

/**
 * The buffer between sources and the sink: a bounded queue in memory, and behind it append-only
 * segment files when the drain is slower than the sources or away.
 *
 * The stream is always: batches out with the sink, then memory, then the spill in segment order.
 * While the spill holds unread records, new batches are appended to it (so the order holds) and
 * read back into memory as the sink takes them. Once the reader catches up, batches stay in memory
 * again. A batch in memory that has waited longer than the fsync interval (the drain is away) is
 * written to the spill, so a source's position never waits long for a drain.
 *
 * Every disk operation runs on one serial chain; the sink's `take` and `handedOn` stay synchronous.
 */
export class SpillBuffer implements BatchBuffer {
  private front: Item[] = [];
  private queue = new Deque<Item>();
  private memBytes = 0;
  private out = 0;
  private segs: Segment[] = [];
  private tail: Segment | undefined;
  private maxSeq = FIRST_SEQ - 1;
  /**
   * Front segments get numbers below every number used before in this run, never a reused one: a
   * cursor entry saved for a deleted segment must not apply to a new one of the same name.
   */
  private minSeq = FIRST_SEQ;
  private diskBytes = 0;
  private unread = 0;
  private pendingOps = 0;
  private pendingBytes = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private afterSync: Array<() => void> = [];
  private dirDirty = false;
  private loading = false;
  /** Segments all sent whose files are being deleted: number → size. */
  private readonly deleting = new Map<number, number>();
  /** 'spilling to disk' was logged, and 'caught up' not yet. */
  private announced = false;
  private cursorDirty = false;
  private isClosed = false;
  private stopped = false;
  private roomWaiters: Array<() => void> = [];
  private dataWaiters: Array<() => void> = [];
  private readonly order = new InOrder();
  private readonly gaps = new GapLedger();
  private gapTickets: Ticket[] = [];
  /**
   * When a push first found the spill at --buffer-max-bytes. Only sending frees room (dropping
   * keeps the spill at its bound), so only a sent segment's removal clears it.
   */
  private fullAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly limited: RateLimitedLog;
  private readonly segmentBytes: number;
  private readonly readAhead: number;
  private readonly slabs: ReadSlabs;
  readonly counters = { spilledBatches: 0, droppedLines: 0, droppedBytes: 0, gapRecords: 0, corruptSegments: 0, tornTails: 0, skippedBytes: 0 };

  private constructor(
    private readonly opts: SpillOptions,
    private readonly unlock: () => Promise<void>,
  ) {
    this.limited = new RateLimitedLog(opts.log);
    this.segmentBytes = opts.segmentBytes ?? Math.max(64 * 1024, Math.min(64 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
    // Never past --memory-max-bytes: /metrics' auditfwd_buffer_bytes and the operator's budget count it.
    this.readAhead = Math.min(opts.memoryMaxBytes, Math.max(256 * 1024, Math.min(opts.memoryMaxBytes / 2, 4 * 1024 * 1024)));
    // Windows alive at once: those the read-ahead's batches are sliced from (the first and last
    // partly sent), the one being parsed, and those of batches the socket has not finished yet.
    // Spare ones kept stay within --memory-max-bytes.
    const keep = Math.min(Math.ceil(this.readAhead / READ_WINDOW) + 4, Math.floor(opts.memoryMaxBytes / READ_WINDOW));
    this.slabs = new ReadSlabs(READ_WINDOW, Math.max(1, keep));
  }

  /** Locks the folder, finds what an earlier run left, and starts the fsync timer. */
  static async open(opts: SpillOptions): Promise<SpillBuffer> {
    const unlock = await lockDir(opts.dir);
    const buf = new SpillBuffer(opts, unlock);
    try {
      await buf.recover();
    } catch (err) {
      await unlock();
      throw err;
    }
    buf.timer = setInterval(() => buf.tick(), opts.fsyncIntervalMs);
    buf.timer.unref();
    buf.maybeLoad();
    return buf;
  }

  get bytes(): number {
    return this.memBytes + this.unread + this.pendingBytes;
  }
  /** Bytes of messages in memory waiting for the drain (queued, read ahead from disk, or out with the sink). */
  get memoryBytes(): number {
    return this.memBytes;
  }
  /** Since when the spill has been at its bound (memory filling up is normal: it spills). */
  get fullSinceMs(): number | undefined {
    return this.fullAt;
  }
  /** Bytes in the segment files not yet handed on. */
  get spilledBytes(): number {
    let n = 0;
    for (const s of this.segs) n += s.size - s.acked;
    return n;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  get finished(): boolean {
    return this.isClosed && this.front.length === 0 && this.queue.length === 0 && this.out === 0 && !this.spilling && this.gaps.empty;
  }
  /** Whether the spill holds something that comes before anything pushed now. */
  private get spilling(): boolean {
    return this.unread > 0 || this.pendingOps > 0;
  }

  // ---- the sources' side ----

  async push(batch: Batch): Promise<void> {
    const item = new Item(batch.frames, batch.count, batch.origin);
    item.release = batch.release;
    if (batch.onHandedOn) item.tickets.push(this.order.add(batch.onHandedOn));
    const size = item.frames.length;
    for (;;) {
      if (!this.gaps.empty && this.hasRoom(size + 2048)) this.emitGap();
      // With no sink sending (the drain is away), memory holds only a read-ahead's worth.
      const budget = this.dataWaiters.length === 0 && this.out === 0 ? this.readAhead : this.opts.memoryMaxBytes;
      if (!this.spilling && (this.memBytes + size <= budget || this.memBytes === 0)) {
        this.queue.push(item);
        this.memBytes += size;
        this.wake(this.dataWaiters);
        return;
      }
      if (this.hasRoom(size)) return this.toDisk(item);
      this.fullAt ??= Date.now();
      if (this.opts.whenFull === 'block') {
        this.limited.warn('full', { dir: this.opts.dir, maxBytes: this.opts.maxBytes }, 'spill full: reading waits (--when-full block)');
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        continue;
      }
      if (this.opts.whenFull === 'drop-oldest' && (await this.dropOldest())) continue;
      this.drop(item);
      return;
    }
  }

  private hasRoom(size: number): boolean {
    const used = this.diskBytes + this.pendingBytes;
    return used + size <= this.opts.maxBytes || used === 0;
  }

  /** Appends a batch; when memory is full, what memory holds goes first, so the order holds. */
  private toDisk(item: Item): Promise<void> {
    const fromMemory = !this.spilling;
    this.pendingOps++;
    this.pendingBytes += item.frames.length;
    return this.serial(async () => {
      try {
        if (fromMemory) await this.writeMemory('memory full');
        await this.append(item);
        this.counters.spilledBatches++;
      } finally {
        this.pendingOps--;
        this.pendingBytes -= item.frames.length;
      }
      this.maybeLoad();
    });
  }

  // ---- the sink's side ----

  take(): Item | undefined {
    const item = this.front.length > 0 ? this.front.shift() : this.queue.shift();
    if (!item) return undefined;
    this.out++;
    this.maybeLoad();
    return item;
  }

  waitForData(): Promise<void> {
    if (this.front.length > 0 || this.queue.length > 0 || this.finished) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.dataWaiters.push(resolve));
    this.maybeLoad();
    return p;
  }

  handedOn(batch: Batch): void {
    const item = batch as Item;
    this.out--;
    this.memBytes -= item.frames.length;
    this.settle(item);
    this.free(item);
    this.wake(this.roomWaiters);
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
  }

  requeue(batches: Batch[]): void {
    if (batches.length === 0) return;
    this.out -= batches.length;
    this.front = (batches as Item[]).concat(this.front);
    this.wake(this.dataWaiters);
  }

  close(): void {
    this.isClosed = true;
    if (!this.gaps.empty) this.emitGap();
    this.wake(this.dataWaiters);
  }

  /**
   * After the sink stopped: what memory holds goes to the spill, everything is synced, the cursor
   * saved and the lock released. Returns what is left for the next run.
   */
  async shutdown(): Promise<{ bytes: number; segments: number }> {
    clearInterval(this.timer);
    this.stopped = true;
    if (!this.gaps.empty) this.emitGap();
    if (this.hasUndurable()) {
      this.pendingOps++;
      void this.serial(() => this.writeMemory('stopping').finally(() => this.pendingOps--));
    }
    await this.serial(async () => {
      await this.syncNow();
      if (this.tail) await this.seal(this.tail);
      await this.saveCursor();
    });
    // Deletions queued by the steps above, then the cursor that no longer needs their entries.
    let chain;
    do {
      chain = this.chain;
      await chain;
    } while (chain !== this.chain);
    await this.serial(async () => {
      await this.saveCursor();
      for (const s of this.segs) await s.reader?.close();
    });
    await this.unlock();
    return { bytes: this.spilledBytes, segments: this.segs.length };
  }

  // ---- completion ----

  /** The batch is handed on or durable: its commits may run, its place in a segment is free. */
  private free(item: Item): void {
    const release = item.release;
    item.release = undefined;
    release?.();
  }

  private settle(item: Pick<Item, 'tickets' | 'place'>): void {
    for (const t of item.tickets) this.order.complete(t);
    if (item.place && !item.place.done) this.release(item.place);
  }

  private release(place: Place): void {
    place.done = true;
    const seg = place.seg;
    while (seg.places.length > 0 && seg.places.peek()!.done) seg.acked = seg.places.shift()!.end;
    this.cursorDirty = true;
    this.maybeRemove(seg);
  }

  private maybeRemove(seg: Segment): void {
    if (seg.removed || !seg.sealed || seg.acked < seg.size || seg.readOff < seg.size) return;
    seg.removed = true;
    this.segs.splice(this.segs.indexOf(seg), 1);
    this.diskBytes -= seg.size;
    this.cursorDirty = true;
    // Until the file is gone, the cursor says it was all sent: a crash in between costs no resend.
    this.deleting.set(seg.seq, seg.size);
    this.fullAt = undefined;
    void this.serial(async () => {
      await seg.reader?.close();
      if (seg.corrupt) {
        const aside = await moveAside(this.opts.dir, seg.seq);
        this.opts.log.warn({ segment: aside }, 'damaged spill segment moved aside after its readable records were sent');
      } else await unlink(this.segPath(seg));
      this.deleting.delete(seg.seq);
      this.cursorDirty = true;
    });
    this.wake(this.roomWaiters);
  }

  // ---- writing ----

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch((err) => this.opts.log.error({ err: String(err) }, 'spill operation failed'));
    return p;
  }

  private segPath(seg: Segment): string {
    return join(this.opts.dir, segName(seg.seq));
  }

  private newSegment(seq: number, size: number): Segment {
    return { seq, size, readOff: 0, acked: 0, sealed: true, places: new Deque(), dirty: false, corrupt: false, removed: false };
  }

  /** Writes one record at the end of the tail segment; its commits run after the next fsync. */
  private async append(item: Item): Promise<void> {
    const parts = encodeRecordParts(item.frames, item.count, item.origin);
    const length = parts[0].length + parts[1].length;
    for (;;) {
      let seg: Segment | undefined;
      try {
        seg = await this.tailFor(length);
        let done = (await seg.writer!.writev(parts, seg.size)).bytesWritten;
        if (done < length) {
          const all = Buffer.concat(parts);
          while (done < length) done += (await seg.writer!.write(all, done, length - done, seg.size + done)).bytesWritten;
        }
        break;
      } catch (err) {
        // A partial record would hide every later one: cut it off, start a new segment, retry.
        if (seg) {
          await seg.writer?.truncate(seg.size).catch(() => {});
          await this.seal(seg).catch(() => {});
        }
        this.limited.warn('write', { err: String(err), dir: this.opts.dir }, 'cannot write to the spill; retrying (reading waits)');
        if (this.stopped) throw err;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    // On disk: the frames' memory can be reused now, the commits wait for the fsync.
    this.free(item);
    const seg = this.tail!;
    seg.size += length;
    seg.dirty = true;
    this.diskBytes += length;
    this.unread += length;
    // Keep only what completion needs: holding the frames until the fsync would cost memory.
    const done = { tickets: item.tickets, place: item.place };
    this.afterSync.push(() => this.settle(done));
  }

  private async tailFor(length: number): Promise<Segment> {
    const cur = this.tail;
    if (cur && !cur.sealed && (cur.size === 0 || cur.size + length <= this.segmentBytes)) return cur;
    if (cur && !cur.sealed) await this.seal(cur);
    const seg = this.newSegment(++this.maxSeq, 0);
    seg.sealed = false;
    seg.writer = await open(this.segPath(seg), 'wx', 0o600);
    this.dirDirty = true;
    this.segs.push(seg);
    this.tail = seg;
    return seg;
  }

  /** fsync of the tail (and of the folder for new files), then the commits that waited for it. */
  private async syncNow(): Promise<void> {
    const waiting = this.afterSync.splice(0);
    try {
      if (this.tail?.dirty && this.tail.writer) {
        this.tail.dirty = false;
        await this.tail.writer.sync();
      }
      if (this.dirDirty) {
        this.dirDirty = false;
        await syncDir(this.opts.dir);
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

  private async seal(seg: Segment): Promise<void> {
    if (seg.sealed) return;
    await this.syncNow();
    seg.sealed = true;
    await seg.writer?.close();
    seg.writer = undefined;
    if (this.tail === seg) this.tail = undefined;
    this.maybeRemove(seg);
  }

  /**
   * Moves every batch memory holds to the spill, in order: appended when nothing is spilled ahead
   * of them, else as a new segment that sorts before the others. Batches that were read back from
   * the spill are rewritten too (the order must hold) and their old places released once durable.
   */
  private async writeMemory(why: string): Promise<void> {
    const all = this.front.concat(this.queue.drain());
    this.front = [];
    // What comes before the first batch that is durable nowhere was read back from the spill and
    // is still there: it stays in memory, in front of what is written now, so the order holds.
    const first = all.findIndex((i) => !i.place);
    for (const item of first === -1 ? all : all.slice(0, first)) this.queue.push(item);
    if (first === -1) return;
    const items = all.slice(first);
    if (!this.announced) {
      this.announced = true;
      this.opts.log.info({ dir: this.opts.dir, why }, 'spilling to disk');
    }
    for (const item of items) this.memBytes -= item.frames.length;
    if (this.unread === 0) {
      for (const item of items) await this.append(item);
      return;
    }
    const seq = --this.minSeq;
    const data = Buffer.concat(items.map((i) => encodeRecord(i.frames, i.count, i.origin)));
    for (const item of items) this.free(item);
    // These batches are now only in `data`: retried like append() until written, never dropped.
    for (;;) {
      try {
        await writeFileDurably(this.opts.dir, segName(seq), data);
        break;
      } catch (err) {
        this.limited.warn('write', { err: String(err), dir: this.opts.dir }, 'cannot write to the spill; retrying (reading waits)');
        if (this.stopped) throw err;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    const seg = this.newSegment(seq, data.length);
    this.segs.unshift(seg);
    this.diskBytes += data.length;
    this.unread += data.length;
    for (const item of items) this.settle(item);
  }

  private tick(): void {
    if (!this.gaps.empty) this.emitGap();
    if (this.oldestWaitingMs() >= this.opts.fsyncIntervalMs) {
      this.pendingOps++;
      void this.serial(() => this.writeMemory('waited longer than the fsync interval').finally(() => this.pendingOps--)).then(() => this.maybeLoad());
    }
    // Checked when the chain gets there, so that the spill written just above is synced now too.
    void this.serial(async () => {
      if (this.afterSync.length > 0 || this.tail?.dirty || this.dirDirty) await this.syncNow();
    });
    if (this.cursorDirty) void this.serial(() => this.saveCursor());
    if (this.unread > 0) this.maybeLoad();
    // A tail the reader caught up with is sealed, so that it is deleted once it is all sent.
    else if (this.tail && this.pendingOps === 0) {
      void this.serial(async () => {
        if (this.unread === 0 && this.pendingOps === 0 && this.tail) await this.seal(this.tail);
      });
    }
  }

  private hasUndurable(): boolean {
    if (this.front.some((i) => !i.place)) return true;
    for (let k = 0; k < this.queue.length; k++) if (!this.queue.at(k)!.place) return true;
    return false;
  }

  /** How long the oldest batch in memory that is durable nowhere has waited. */
  private oldestWaitingMs(): number {
    let oldest = Infinity;
    for (const i of this.front) if (!i.place) oldest = Math.min(oldest, i.at);
    for (let k = 0; k < this.queue.length; k++) {
      const i = this.queue.at(k)!;
      if (!i.place) {
        oldest = Math.min(oldest, i.at);
        break;
      }
    }
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }

  private async saveCursor(): Promise<void> {
    if (!this.cursorDirty) return;
    this.cursorDirty = false;
    const acked = new Map<number, number>();
    for (const s of this.segs) if (s.acked > 0) acked.set(s.seq, s.acked);
    for (const [seq, size] of this.deleting) acked.set(seq, size);
    await writeCursor(this.opts.dir, acked);
  }

  // ---- reading back ----

  private maybeLoad(): void {
    if (this.loading || this.stopped || this.unread === 0 || this.memBytes >= this.readAhead) return;
    // Read back only for a sink that is sending: behind a dead drain it would be memory for nothing.
    if (this.dataWaiters.length === 0 && this.out === 0) return;
    this.loading = true;
    void this.serial(() => this.load())
      .then((progress) => {
        this.loading = false;
        if (progress) this.maybeLoad();
      })
      .catch(() => {
        this.loading = false;
      });
  }

  /** Reads records of the first unread segment into memory, up to the read-ahead; false when stuck. */
  private async load(): Promise<boolean> {
    if (this.stopped) return false;
    const seg = this.segs.find((s) => s.readOff < s.size);
    if (!seg) return false;
    seg.reader ??= await open(this.segPath(seg), 'r');
    // The window read into; the batches sliced from it hold it too, until they are released.
    let slab = this.slabs.lease(Math.min(READ_WINDOW, seg.size - seg.readOff));
    const reread = (length: number): Promise<Buffer> => {
      slab.unref();
      slab = this.slabs.lease(length);
      return this.readInto(seg, seg.readOff, slab.buf, length);
    };
    let at = 0;
    let loaded = 0;
    try {
      let window = await this.readInto(seg, seg.readOff, slab.buf, Math.min(READ_WINDOW, seg.size - seg.readOff));
      while (at < window.length && this.memBytes < this.readAhead) {
        const p = parseRecord(window, at);
        if (p.kind === 'record') {
          if (this.memBytes > 0 && this.memBytes + p.record.frames.length > this.readAhead) break;
          const item = new Item(p.record.frames, p.record.count, p.record.origin);
          item.release = slab.hold();
          item.place = { seg, end: seg.readOff + p.next, done: false };
          seg.places.push(item.place);
          this.queue.push(item);
          this.memBytes += item.frames.length;
          at = p.next;
          loaded++;
          continue;
        }
        if (p.kind === 'short' && seg.readOff + at + p.need <= seg.size) {
          if (at > 0) break; // the next call reads from this record's start
          window = await reread(p.need);
          continue;
        }
        this.advance(seg, at);
        at = 0;
        await this.skipDamage(seg, p);
        if (seg.readOff >= seg.size) break;
        window = await reread(Math.min(READ_WINDOW, seg.size - seg.readOff));
      }
    } finally {
      slab.unref();
    }
    this.advance(seg, at);
    if (loaded > 0) this.wake(this.dataWaiters);
    if (seg.readOff >= seg.size) {
      await seg.reader?.close();
      seg.reader = undefined;
      this.maybeRemove(seg);
    }
    // Caught up: new batches may stay in memory again; the tail is sealed so it can be deleted.
    if (this.unread === 0 && this.pendingOps === 0 && this.tail) await this.seal(this.tail);
    if (this.unread === 0) {
      if (this.announced && this.pendingOps === 0) this.opts.log.info({ dir: this.opts.dir }, 'spill caught up; lines stay in memory again');
      this.announced = this.pendingOps > 0;
      this.wake(this.roomWaiters);
    }
    return loaded > 0 || seg.readOff >= seg.size;
  }

  private advance(seg: Segment, by: number): void {
    seg.readOff += by;
    this.unread -= by;
  }

  private readAt(seg: Segment, pos: number, length: number): Promise<Buffer> {
    return this.readInto(seg, pos, Buffer.allocUnsafe(length), length);
  }

  private async readInto(seg: Segment, pos: number, buf: Buffer, length: number): Promise<Buffer> {
    let got = 0;
    while (got < length) {
      const { bytesRead } = await seg.reader!.read(buf, got, length - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  /** The record at `pos` as read from the file (header first, then exactly its length). */
  private async recordAt(seg: Segment, pos: number): Promise<Parsed> {
    const head = await this.readAt(seg, pos, Math.min(HEADER_BYTES, seg.size - pos));
    if (head.length < HEADER_BYTES) return parseRecord(head, 0);
    if (head.readUInt32BE(0) !== MAGIC) return { kind: 'bad', reason: 'bad magic' };
    const len = head.readUInt32BE(4);
    if (len > MAX_BODY_BYTES) return { kind: 'bad', reason: 'impossible length' };
    if (pos + HEADER_BYTES + len > seg.size) return { kind: 'short', need: HEADER_BYTES + len };
    return parseRecord(await this.readAt(seg, pos, HEADER_BYTES + len), 0);
  }

  /**
   * The record at readOff is damaged. Looks for the next intact record: found, the bytes between
   * are skipped (the segment is kept aside afterwards); not found and the record ran past the end
   * of the file, it is a torn tail from a crash and is cut off.
   */
  private async skipDamage(seg: Segment, failure: Parsed): Promise<void> {
    const from = seg.readOff;
    let next = -1;
    for (let pos = from + 1; pos < seg.size && next === -1; ) {
      const window = await this.readAt(seg, pos, Math.min(READ_WINDOW, seg.size - pos));
      for (let i = findMagic(window, 0); i !== -1; i = findMagic(window, i + 1)) {
        if ((await this.recordAt(seg, pos + i)).kind === 'record') {
          next = pos + i;
          break;
        }
      }
      if (window.length <= 3) break;
      pos += window.length - 3;
    }
    const file = this.segPath(seg);
    if (next === -1 && failure.kind === 'short') {
      const cut = seg.size - from;
      this.counters.tornTails++;
      this.opts.log.warn({ segment: file, offset: from, bytes: cut }, 'torn record at the end of a spill segment cut off (a crash during a write)');
      if (seg.sealed) {
        const fh = await open(file, 'r+');
        await fh.truncate(from).finally(() => fh.close());
      }
      seg.size = from;
      this.diskBytes -= cut;
      this.unread -= cut;
      return;
    }
    const skip = (next === -1 ? seg.size : next) - from;
    if (!seg.corrupt) this.counters.corruptSegments++;
    seg.corrupt = true;
    this.counters.skippedBytes += skip;
    this.opts.stats.spillCorrupt++;
    this.opts.log.error(
      { segment: file, offset: from, skippedBytes: skip, reason: failure.kind === 'bad' ? failure.reason : 'length past the end' },
      'damaged record in a spill segment skipped; the segment is kept aside once the rest is sent',
    );
    const place = { seg, end: from + skip, done: true };
    seg.places.push(place);
    this.advance(seg, skip);
    this.release(place);
  }

  // ---- when full ----

  private drop(item: Item): void {
    this.free(item);
    this.counters.droppedLines += item.count;
    this.counters.droppedBytes += item.origin ? item.origin.end - item.origin.start : item.frames.length;
    this.opts.stats.addDropped('buffer-full', item.count);
    this.gaps.add(item.origin, item.count, item.frames.length);
    // The source's position moves past the dropped lines only when the gap record is safe.
    this.gapTickets.push(...item.tickets);
    this.limited.warn('full', { dir: this.opts.dir, maxBytes: this.opts.maxBytes, policy: this.opts.whenFull }, 'spill full: dropping lines');
  }

  /** The gap record goes where the hole is: next in the stream, even past the bound (it is small). */
  private emitGap(): void {
    const ranges = this.gaps.take();
    const { frames, count } = gapFrames(this.opts.gapFramer, ranges, `buffer full (--when-full ${this.opts.whenFull})`);
    const item = new Item(frames, count, undefined);
    item.tickets = this.gapTickets.splice(0);
    this.counters.gapRecords += count;
    this.opts.log.warn({ gaps: ranges }, 'lines dropped; gap records sent in their place');
    if (!this.spilling && !this.stopped) {
      this.queue.push(item);
      this.memBytes += frames.length;
      this.wake(this.dataWaiters);
      return;
    }
    this.pendingOps++;
    void this.serial(async () => {
      try {
        await this.append(item);
      } finally {
        this.pendingOps--;
      }
      this.maybeLoad();
    });
  }

  /**
   * Drops the oldest segment nothing was read from yet, replacing it with gap records for what it
   * held (records without an origin, earlier gap records among them, are kept). False when there
   * is no such segment.
   */
  private dropOldest(): Promise<boolean> {
    return this.serial(async () => {
      const victim = this.segs.find((s) => s.sealed && !s.removed && !s.gapsOnly && s.readOff === 0 && s.places.length === 0 && s.size > 0);
      if (!victim) return false;
      const ledger = new GapLedger();
      const keep: Buffer[] = [];
      victim.reader ??= await open(this.segPath(victim), 'r');
      let lines = 0;
      for (let pos = 0; pos < victim.size; ) {
        const p = await this.recordAt(victim, pos);
        if (p.kind !== 'record') {
          ledger.add(undefined, 0, victim.size - pos);
          break;
        }
        if (p.record.origin) {
          ledger.add(p.record.origin, p.record.count, p.record.frames.length);
          lines += p.record.count;
        } else keep.push(encodeRecord(p.record.frames, p.record.count, undefined));
        pos += p.next; // recordAt parses from 0
      }
      await victim.reader.close();
      victim.reader = undefined;
      const ranges = ledger.take();
      const gap = gapFrames(this.opts.gapFramer, ranges, 'buffer full (--when-full drop-oldest)');
      keep.push(encodeRecord(gap.frames, gap.count, undefined));
      const data = Buffer.concat(keep);
      await writeFileDurably(this.opts.dir, segName(victim.seq), data);
      const freed = victim.size - data.length;
      this.diskBytes -= freed;
      this.unread -= freed;
      victim.size = data.length;
      victim.gapsOnly = true;
      let bytes = 0;
      for (const r of ranges) bytes += r.bytes;
      this.counters.droppedLines += lines;
      this.counters.droppedBytes += bytes;
      this.counters.gapRecords += gap.count;
      this.opts.stats.addDropped('buffer-full', lines);
      this.limited.warn('drop-oldest', { gaps: ranges }, 'spill full: dropped the oldest spilled lines; gap records sent in their place');
      return freed > 0;
    });
  }

  // ---- start ----

  private async recover(): Promise<void> {
    const { dir, log } = this.opts;
    const cursor = await readCursor(dir);
    for (const seq of await listSegments(dir)) {
      const seg = this.newSegment(seq, (await stat(join(dir, segName(seq)))).size);
      if (seg.size === 0) {
        await unlink(this.segPath(seg));
        continue;
      }
      const acked = cursor.get(seq) ?? 0;
      if (acked <= seg.size) seg.readOff = seg.acked = acked;
      this.segs.push(seg);
      this.maxSeq = Math.max(this.maxSeq, seq);
      this.diskBytes += seg.size;
      this.unread += seg.size - seg.readOff;
    }
    const last = this.segs[this.segs.length - 1];
    if (last) await this.cutTornTail(last);
    this.minSeq = Math.min(FIRST_SEQ, ...this.segs.map((s) => s.seq));
    // Entries of segments that are gone must not outlive them (their names are never reused in a
    // run, but a later run starts numbering after what it finds).
    await writeCursor(dir, new Map(this.segs.filter((s) => s.acked > 0).map((s) => [s.seq, s.acked])));
    for (const seg of [...this.segs]) this.maybeRemove(seg);
    if (this.segs.length > 0) log.info({ dir, segments: this.segs.length, bytes: this.unread }, 'spill from an earlier run found; it is sent first');
  }

  /**
   * Only the segment with the highest number was being appended to when an earlier run stopped;
   * the others were sealed, or written whole and renamed into place. Walks its record headers and
   * cuts off a record that runs past the end of the file: a write the crash interrupted.
   */
  private async cutTornTail(seg: Segment): Promise<void> {
    const file = this.segPath(seg);
    const fh = await open(file, 'r+');
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      let pos = 0;
      while (pos < seg.size) {
        const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, pos);
        if (bytesRead === HEADER_BYTES && head.readUInt32BE(0) !== MAGIC) return; // damage, not a torn write: found when read
        const len = bytesRead === HEADER_BYTES ? head.readUInt32BE(4) : 0;
        if (bytesRead < HEADER_BYTES || pos + HEADER_BYTES + len > seg.size) break;
        pos += HEADER_BYTES + len;
      }
      if (pos >= seg.size) return;
      const cut = seg.size - pos;
      await fh.truncate(pos);
      await fh.sync();
      this.counters.tornTails++;
      this.opts.log.warn({ segment: file, offset: pos, bytes: cut }, 'torn record at the end of a spill segment cut off (a crash during a write)');
      this.diskBytes -= cut;
      this.unread -= seg.size - seg.readOff;
      seg.size = pos;
      // A cursor past the cut (sent, but the power went before the data was synced) stops there.
      seg.readOff = seg.acked = Math.min(seg.acked, pos);
      this.unread += seg.size - seg.readOff;
    } finally {
      await fh.close();
    }
  }

  private wake(waiters: Array<() => void>): void {
    if (waiters.length === 0) return;
    for (const w of waiters.splice(0)) w();
  }
}
