import { join } from 'node:path';
import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import { RateLimitedLog, type Logger } from '../../ops/log.js';
import type { Stats } from '../../ops/stats.js';
import { nextBatchId, type Batch, type BatchBuffer } from '../../record.js';
import { FIRST_SEQ, listSegments, lockDir, readCursor, segName } from './files.js';
import { errCode, nodeIo, writeFileDurably, type SpillIo } from './io.js';
import { Item, Ledger, newCounters, type Segment } from './ledger.js';
import { Deque, InOrder } from './order.js';
import { READ_WINDOW, SegmentReader } from './reader.js';
import { encodeRecord, encodeRecordParts } from './record.js';
import { FullPolicy, type WhenFull } from './when-full.js';
import { SegmentWriter } from './writer.js';

export type { WhenFull };

/** What a spill that could not be written must take again before it counts as writable. */
const PROBE_BYTES = 64 * 1024;
export { SpillError } from './io.js';

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
  /** The file operations; tests inject failures here. */
  io?: SpillIo;
  /** After a failed write, how long before the spill tries to grow again. */
  retryMs?: number;
}

/** Why the spill cannot grow, since when: /healthz and metrics read it. */
export interface SpillProblem {
  code: string;
  sinceMs: number;
}

/**
 * The buffer between sources and the sink: a bounded queue in memory, and behind it append-only
 * segment files when the drain is slower than the sources or away.
 *
 * The stream is always: batches out with the sink, then memory, then the spill in segment order,
 * then the overflow. While the spill holds unread records, new batches are appended to it (so the
 * order holds) and read back into memory as the sink takes them. Once the reader catches up,
 * batches stay in memory again. A batch in memory that has waited longer than the fsync interval
 * (the drain is away) is written to the spill, so a source's position never waits long for a drain.
 *
 * A spill that cannot be written (ENOSPC, EIO, EROFS, EDQUOT, its folder gone) stops growing: new
 * batches wait in the overflow in memory, --when-full applies once that is full, and the reader
 * keeps sending what the spill holds. Writing is tried again every retryMs.
 *
 * Every disk operation runs on one serial chain; the sink's `take` and `handedOn` stay synchronous.
 */
export class SpillBuffer implements BatchBuffer {
  private front: Item[] = [];
  private queue = new Deque<Item>();
  /** Batches after the spill that could not be written to it; their bytes count in memBytes too. */
  private overflow: Item[] = [];
  private overflowBytes = 0;
  private memBytes = 0;
  private out = 0;
  private pendingOps = 0;
  private pendingBytes = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private loading = false;
  /** 'spilling to disk' was logged, and 'caught up' not yet. */
  private announced = false;
  private isClosed = false;
  private stopped = false;
  private roomWaiters: Array<() => void> = [];
  private dataWaiters: Array<() => void> = [];
  private readonly order = new InOrder();
  /**
   * When a push first found the spill at --buffer-max-bytes (or unwritable with memory full).
   * Only sending frees room (dropping keeps the spill at its bound), so only a sent segment's
   * removal, or a push that gets through, clears it.
   */
  private fullAt: number | undefined;
  private stuck: { code: string; since: number; retryAt: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly limited: RateLimitedLog;
  private readonly io: SpillIo;
  private readonly retryMs: number;
  private readonly readAhead: number;
  private readonly overflowMax: number;
  private readonly ledger: Ledger;
  private readonly writer: SegmentWriter;
  private readonly reader: SegmentReader;
  private readonly policy: FullPolicy;
  readonly counters = newCounters();

  private constructor(
    private readonly opts: SpillOptions,
    private readonly unlock: () => Promise<void>,
  ) {
    this.io = opts.io ?? nodeIo;
    this.retryMs = opts.retryMs ?? 1000;
    this.limited = new RateLimitedLog(opts.log);
    const segmentBytes = opts.segmentBytes ?? Math.max(64 * 1024, Math.min(64 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
    this.readAhead = Math.max(256 * 1024, Math.min(opts.memoryMaxBytes / 2, 4 * 1024 * 1024));
    // The read-ahead and the batches out with the sink come first; the overflow gets what is left.
    this.overflowMax = Math.max(0, opts.memoryMaxBytes - this.readAhead);
    this.ledger = new Ledger(this.io, opts.dir, opts.log, (seg) => this.removed(seg));
    this.writer = new SegmentWriter(this.ledger, segmentBytes);
    // Windows alive at once: those the read-ahead's batches are sliced from (the first and last
    // partly sent), the one being parsed, and those of batches the socket has not finished yet.
    // Spare ones kept stay within --memory-max-bytes.
    const keep = Math.min(Math.ceil(this.readAhead / READ_WINDOW) + 4, Math.floor(opts.memoryMaxBytes / READ_WINDOW));
    this.reader = new SegmentReader(this.ledger, opts.log, opts.stats, this.counters, keep);
    this.policy = new FullPolicy(opts, this.counters, this.limited);
  }

  /** Locks the folder, finds what an earlier run left, and starts the fsync timer. */
  static async open(opts: SpillOptions): Promise<SpillBuffer> {
    const unlock = await lockDir(opts.io ?? nodeIo, opts.dir);
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
    return this.memBytes + this.ledger.unread + this.pendingBytes;
  }
  /** Bytes held in memory: queued, read back, out with the sink, and the overflow. */
  get memoryBytes(): number {
    return this.memBytes;
  }
  /** Since when the spill has been at its bound (memory filling up is normal: it spills). */
  get fullSinceMs(): number | undefined {
    return this.fullAt;
  }
  /** Set while the spill cannot be written. */
  get problem(): SpillProblem | undefined {
    return this.stuck && { code: this.stuck.code, sinceMs: this.stuck.since };
  }
  /** Bytes in the segment files not yet handed on. */
  get spilledBytes(): number {
    return this.ledger.spilledBytes;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  get finished(): boolean {
    return this.isClosed && this.front.length === 0 && this.queue.length === 0 && this.out === 0 && !this.spilling && !this.policy.gapPending;
  }
  /** Whether something comes before anything pushed now that is not in the memory queue. */
  private get spilling(): boolean {
    return this.ledger.unread > 0 || this.pendingOps > 0 || this.overflow.length > 0;
  }
  private get canWrite(): boolean {
    return !this.stuck || Date.now() >= this.stuck.retryAt;
  }

  // ---- the sources' side ----

  async push(batch: Batch): Promise<void> {
    const item = new Item(batch.id ?? nextBatchId(), batch.frames, batch.count, batch.origin);
    item.release = batch.release;
    if (batch.onHandedOn) item.tickets.push(this.order.add(batch.onHandedOn));
    const size = item.frames.length;
    for (;;) {
      if (this.policy.gapPending && this.hasRoom(size + 2048)) this.emitGap();
      // With no sink sending (the drain is away), memory holds only a read-ahead's worth, unless
      // the spill cannot take the rest.
      const idle = this.dataWaiters.length === 0 && this.out === 0;
      const budget = idle && !this.stuck ? this.readAhead : this.opts.memoryMaxBytes;
      if (!this.spilling && (this.memBytes + size <= budget || this.memBytes === 0)) {
        this.queue.push(item);
        this.memBytes += size;
        this.gotThrough();
        this.wake(this.dataWaiters);
        return;
      }
      if (this.canWrite && this.hasRoom(size)) {
        if (await this.toDisk(item)) return;
        continue;
      }
      if (this.stuck && this.spilling && (this.overflowBytes + size <= this.overflowMax || this.overflow.length === 0)) {
        this.toOverflow(item, false);
        this.gotThrough();
        return;
      }
      this.fullAt ??= Date.now();
      if (this.opts.whenFull === 'block') {
        this.limited.warn('full', { dir: this.opts.dir, maxBytes: this.opts.maxBytes, unwritable: this.stuck?.code }, 'spill full: reading waits (--when-full block)');
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        continue;
      }
      if (this.opts.whenFull === 'drop-oldest' && (await this.dropOldest())) continue;
      this.policy.drop(item);
      return;
    }
  }

  private gotThrough(): void {
    // Still full while other sources wait for room: /healthz must not flap between them.
    if (this.roomWaiters.length === 0 && this.ledger.diskBytes < this.opts.maxBytes) this.fullAt = undefined;
  }

  private hasRoom(size: number): boolean {
    const used = this.ledger.diskBytes + this.pendingBytes;
    return used + size <= this.opts.maxBytes || used === 0;
  }

  private toOverflow(item: Item, first: boolean): void {
    if (first) this.overflow.unshift(item);
    else this.overflow.push(item);
    this.overflowBytes += item.frames.length;
    this.memBytes += item.frames.length;
  }

  /** Appends a batch; when memory is full, what memory holds goes first, so the order holds. False: not written. */
  private toDisk(item: Item): Promise<boolean> {
    const fromMemory = !this.spilling;
    const size = item.frames.length;
    this.pendingOps++;
    this.pendingBytes += size;
    return this.serial(async () => {
      try {
        if (fromMemory) await this.writeMemory('memory full');
        return (await this.flushOverflow()) && (await this.appendItem(item));
      } finally {
        this.pendingOps--;
        this.pendingBytes -= size;
      }
    }).finally(() => this.afterWrite());
  }

  private afterWrite(): void {
    this.catchUp();
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
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
    if (this.policy.gapPending) this.emitGap();
    this.wake(this.dataWaiters);
  }

  /**
   * After the sink stopped: what memory holds goes to the spill, everything is synced, the cursor
   * saved and the lock released. Returns what is left for the next run. What cannot be written
   * was never committed: its sources read it again next time.
   */
  async shutdown(): Promise<{ bytes: number; segments: number }> {
    clearInterval(this.timer);
    this.stopped = true;
    if (this.stuck) this.stuck.retryAt = 0; // one last try
    if (this.policy.gapPending) this.emitGap();
    if (this.hasUndurable()) void this.serial(() => this.writeMemory('stopping'));
    void this.serial(() => this.flushOverflow());
    await this.serial(async () => {
      await this.sync();
      if (this.writer.tail) await this.writer.seal(this.writer.tail).catch((err) => this.markStuck(err));
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
      for (const s of this.ledger.segs) await s.reader?.close().catch(() => {});
    });
    await this.unlock();
    return { bytes: this.spilledBytes, segments: this.ledger.segs.length };
  }

  /** Stops at once, as a crash would: no more disk operations, nothing saved (tests). */
  abandon(): void {
    clearInterval(this.timer);
    this.stopped = true;
    this.isClosed = true;
  }

  // ---- completion ----

  /** The frames' memory goes back to their owner: they were sent, or are on disk. */
  private free(item: Item): void {
    const release = item.release;
    item.release = undefined;
    release?.();
  }

  /** The batch is handed on or durable: its commits may run, its place in a segment is free. */
  private settle(item: Pick<Item, 'tickets' | 'place' | 'covers'>): void {
    for (const t of item.tickets) this.order.complete(t);
    if (item.place && !item.place.done) this.ledger.release(item.place);
    if (item.covers) for (const p of item.covers) if (!p.done) this.ledger.release(p);
  }

  private removed(seg: Segment): void {
    this.fullAt = undefined;
    void this.serial(() => this.ledger.deleteFile(seg));
    this.wake(this.roomWaiters);
  }

  // ---- writing ----

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch((err) => this.limited.warn('op', { err: String(err), dir: this.opts.dir }, 'spill operation failed'));
    return p;
  }

  /** Writes one batch at the end of the spill; false (and the spill marked unwritable) when it cannot. */
  private async appendItem(item: Item): Promise<boolean> {
    if (!this.canWrite) return false;
    // Keep only what completion needs: holding the frames until the fsync would cost memory.
    const done = { tickets: item.tickets, place: item.place, covers: item.covers };
    try {
      await this.writer.append(encodeRecordParts(item.frames, item.count, item.origin, item.id), () => this.settle(done));
    } catch (err) {
      this.markStuck(err);
      return false;
    }
    this.writable();
    this.free(item);
    this.counters.spilledBatches++;
    return true;
  }

  /** Writes the overflow after the spill, in order, while it can; true when it is empty. */
  private async flushOverflow(): Promise<boolean> {
    while (this.overflow.length > 0) {
      const item = this.overflow[0];
      if (!(await this.appendItem(item))) return false;
      this.overflow.shift();
      this.overflowBytes -= item.frames.length;
      this.memBytes -= item.frames.length;
      this.wake(this.roomWaiters);
    }
    return true;
  }

  /** The reader caught up with the spill: the overflow is next in the stream, in memory already. */
  private catchUp(): void {
    if (this.ledger.unread > 0 || this.pendingOps > 0 || this.overflow.length === 0) return;
    for (const item of this.overflow) this.queue.push(item);
    this.overflow = [];
    this.overflowBytes = 0;
    this.wake(this.dataWaiters);
  }

  private markStuck(err: unknown): void {
    const code = errCode(err);
    const now = Date.now();
    this.counters.writeFailures++;
    if (!this.stuck) this.opts.stats.spillUnwritable++;
    this.stuck = { code, since: this.stuck?.since ?? now, retryAt: now + this.retryMs };
    this.limited.warn(
      'write',
      { err: String(err), code, dir: this.opts.dir },
      'cannot write to the spill: it stops growing; what it holds is still sent, new lines wait in memory and --when-full applies; retrying',
    );
  }

  private writable(): void {
    if (!this.stuck) return;
    this.opts.log.info({ dir: this.opts.dir, code: this.stuck.code, forMs: Date.now() - this.stuck.since }, 'the spill can be written again; spilling resumes');
    this.limited.clear('write');
    this.stuck = undefined;
    this.wake(this.roomWaiters);
  }

  private async probe(): Promise<void> {
    if (!this.stuck || !this.canWrite) return;
    try {
      await writeFileDurably(this.io, this.opts.dir, 'probe', Buffer.alloc(PROBE_BYTES));
      await this.io.unlink(join(this.opts.dir, 'probe'));
    } catch (err) {
      this.markStuck(err);
      return;
    }
    this.writable();
  }

  private async sync(): Promise<void> {
    if (!this.writer.dirty) return;
    try {
      await this.writer.syncNow();
    } catch (err) {
      this.markStuck(err);
    }
  }

  private async saveCursor(): Promise<void> {
    await this.ledger.saveCursor().catch((err) => this.markStuck(err));
  }

  /**
   * Moves every batch memory holds to the spill, in order: appended when nothing is spilled ahead
   * of them, else as a new segment that sorts before the others. Batches that were read back from
   * the spill are rewritten too (the order must hold) and their old places released once durable.
   * What cannot be written stays in memory, where the order puts it.
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
    if (this.ledger.unread === 0) {
      let k = 0;
      while (k < items.length && (await this.appendItem(items[k]))) k++;
      // Written ones are in the spill now: the rest follows it.
      for (const item of items.slice(k).reverse()) {
        if (k === 0) this.memBytes += item.frames.length;
        else this.toOverflow(item, true);
      }
      if (k === 0) for (const item of items) this.queue.push(item);
      return;
    }
    const restore = () => {
      for (const item of items) {
        this.queue.push(item);
        this.memBytes += item.frames.length;
      }
    };
    if (!this.canWrite) return restore();
    try {
      await this.writer.writeFront(Buffer.concat(items.map((i) => encodeRecord(i.frames, i.count, i.origin, i.id))));
    } catch (err) {
      this.markStuck(err);
      return restore();
    }
    this.writable();
    for (const item of items) {
      this.free(item);
      this.settle(item);
    }
  }

  private tick(): void {
    if (this.policy.gapPending) this.emitGap();
    if (this.stuck && this.canWrite) {
      this.wake(this.roomWaiters);
      // Nothing may need writing for a long while (the drain keeps up): a small write says whether it could.
      void this.serial(() => this.probe());
    }
    if (this.overflow.length > 0 && this.canWrite) {
      this.pendingOps++;
      void this.serial(() => this.flushOverflow().finally(() => this.pendingOps--)).finally(() => this.afterWrite());
    }
    if (this.canWrite && this.oldestWaitingMs() >= this.opts.fsyncIntervalMs) {
      this.pendingOps++;
      void this.serial(() => this.writeMemory('waited longer than the fsync interval').finally(() => this.pendingOps--)).finally(() => this.afterWrite());
    }
    // Checked when the chain gets there, so that the spill written just above is synced now too.
    void this.serial(() => this.sync());
    if (this.ledger.cursorDirty) void this.serial(() => this.saveCursor());
    if (this.ledger.unread > 0) this.maybeLoad();
    // A tail the reader caught up with is sealed, so that it is deleted once it is all sent.
    else if (this.writer.tail && this.pendingOps === 0) void this.serial(() => this.sealCaughtUp());
  }

  private async sealCaughtUp(): Promise<void> {
    if (this.ledger.unread === 0 && this.pendingOps === 0 && this.writer.tail) await this.writer.seal(this.writer.tail).catch((err) => this.markStuck(err));
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

  // ---- reading back ----

  private maybeLoad(): void {
    if (this.ledger.unread === 0) this.catchUp();
    if (this.loading || this.stopped || this.ledger.unread === 0 || this.memBytes - this.overflowBytes >= this.readAhead) return;
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
    const seg = this.ledger.nextUnread();
    if (!seg) return false;
    const loaded = await this.reader.load(
      seg,
      () => this.memBytes - this.overflowBytes < this.readAhead,
      (record, release, place) => {
        const item = new Item(record.id ?? nextBatchId(), record.frames, record.count, record.origin);
        item.release = release;
        item.place = place;
        this.queue.push(item);
        this.memBytes += item.frames.length;
      },
    );
    if (loaded > 0) this.wake(this.dataWaiters);
    // Caught up: new batches may stay in memory again; the tail is sealed so it can be deleted.
    await this.sealCaughtUp();
    if (this.ledger.unread === 0) {
      if (this.announced && this.pendingOps === 0) this.opts.log.info({ dir: this.opts.dir }, 'spill caught up; lines stay in memory again');
      this.announced = this.pendingOps > 0;
      this.catchUp();
      this.wake(this.roomWaiters);
      // The last bytes may have been damage, skipped: nothing was loaded, and the sink waits.
      if (this.finished) this.wake(this.dataWaiters);
    }
    return loaded > 0 || seg.readOff >= seg.size;
  }

  // ---- when full ----

  /** The gap record goes where the hole is: next in the stream, even past the bound (it is small). */
  private emitGap(): void {
    const item = this.policy.takeGap();
    if (!this.spilling && !this.stopped) {
      this.queue.push(item);
      this.memBytes += item.frames.length;
      this.wake(this.dataWaiters);
      return;
    }
    this.pendingOps++;
    void this.serial(async () => {
      try {
        if (!((await this.flushOverflow()) && (await this.appendItem(item)))) this.toOverflow(item, false);
      } finally {
        this.pendingOps--;
      }
    }).finally(() => this.afterWrite());
  }

  /**
   * Drops the oldest data the sink has not taken: the batches read back into memory and the rest
   * of their segment, or a segment nothing was read from yet (rewritten to hold only gap records).
   * False when there is nothing to drop.
   */
  private dropOldest(): Promise<boolean> {
    return this.serial(async () => {
      const memory = this.front.concat(this.queue.drain());
      this.front = [];
      const waiting = new Set(memory.flatMap((i) => (i.place ? [i.place.seg] : [])));
      const victim = this.ledger.segs.find((s) => !s.removed && !s.gapsOnly && (s.readOff < s.size || waiting.has(s)));
      try {
        if (!victim) return false;
        if (victim.readOff === 0 && victim.places.length === 0) {
          await this.writer.seal(victim);
          return (await this.policy.rewriteUnread(victim, this.ledger, this.reader)) > 0;
        }
        await this.writer.seal(victim).catch(() => {});
        const kept = await this.policy.dropReadBack(victim, memory, this.ledger, this.reader, (item) => this.free(item));
        memory.splice(0, memory.length, ...kept.memory);
        this.memBytes -= kept.freedMemory;
        return true;
      } catch (err) {
        this.markStuck(err);
        return false;
      } finally {
        for (const item of memory) this.queue.push(item);
        this.wake(this.dataWaiters);
      }
    });
  }

  // ---- start ----

  private async recover(): Promise<void> {
    const { dir, log } = this.opts;
    const cursor = await readCursor(this.io, dir);
    for (const seq of await listSegments(this.io, dir)) {
      const seg = this.ledger.newSegment(seq, await this.io.size(join(dir, segName(seq))));
      if (seg.size === 0) {
        await this.io.unlink(this.ledger.path(seg));
        continue;
      }
      const acked = cursor.get(seq) ?? 0;
      if (acked <= seg.size) seg.readOff = seg.acked = acked;
      this.ledger.segs.push(seg);
      this.writer.maxSeq = Math.max(this.writer.maxSeq, seq);
      this.ledger.diskBytes += seg.size;
      this.ledger.unread += seg.size - seg.readOff;
    }
    const segs = this.ledger.segs;
    const last = segs[segs.length - 1];
    if (last) await this.reader.cutTornTail(last);
    this.writer.minSeq = Math.min(FIRST_SEQ, ...segs.map((s) => s.seq));
    // Entries of segments that are gone must not outlive them (their names are never reused in a
    // run, but a later run starts numbering after what it finds).
    this.ledger.cursorDirty = true;
    await this.saveCursor();
    for (const seg of [...segs]) this.ledger.maybeRemove(seg);
    if (segs.length > 0) log.info({ dir, segments: segs.length, bytes: this.ledger.unread }, 'spill from an earlier run found; it is sent first');
  }

  private wake(waiters: Array<() => void>): void {
    if (waiters.length === 0) return;
    for (const w of waiters.splice(0)) w();
  }
}
