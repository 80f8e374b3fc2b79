import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import { RateLimitedLog, type Logger } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import { nextBatchId, type Batch, type BatchBuffer } from '../../batch.js';
import { DiskState, type SpillProblem } from './disk-state.js';
import { lockDir } from './files.js';
import { nodeIo, type SpillIo } from './io.js';
import { Item, Ledger, newCounters, type Segment } from './ledger.js';
import { MemoryQueue } from './memory-queue.js';
import { InOrder } from './order.js';
import { READ_WINDOW, SegmentReader } from './reader.js';
import { recover } from './recover.js';
import { Spiller } from './spiller.js';
import { FullPolicy, type WhenFull } from './when-full.js';
import { SegmentWriter } from './writer.js';

export type { SpillProblem, WhenFull };
export { SpillError } from './io.js';

/** Room a gap record needs: a few hundred bytes per range it names. */
const GAP_ROOM = 2048;

export interface SpillOptions {
  dir: string;
  /** Bound of the segment files together. */
  maxBytes: number;
  /** Bound of what is held in memory: queued, read back from the spill, out with the sink, and the overflow. */
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
 * A spill that cannot be written stops growing, as if at --buffer-max-bytes: new batches wait in
 * the overflow while memory allows, then --when-full applies, and the reader keeps sending what
 * the spill holds. Writing is tried again after retryMs (DiskState).
 *
 * Every disk operation runs on one serial chain; the sink's `take` and `handedOn` stay synchronous.
 */
export class SpillBuffer implements BatchBuffer {
  private readonly mem = new MemoryQueue();
  private pendingOps = 0;
  private pendingBytes = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private loading = false;
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
  private timer: NodeJS.Timeout | undefined;
  private readonly limited: RateLimitedLog;
  private readonly readAhead: number;
  private readonly overflowMax: number;
  private readonly disk: DiskState;
  private readonly ledger: Ledger;
  private readonly writer: SegmentWriter;
  private readonly reader: SegmentReader;
  private readonly policy: FullPolicy;
  private readonly spiller: Spiller;
  readonly counters = newCounters();

  private constructor(
    private readonly opts: SpillOptions,
    private readonly unlock: () => Promise<void>,
  ) {
    const io = opts.io ?? nodeIo;
    this.limited = new RateLimitedLog(opts.log);
    const segmentBytes = opts.segmentBytes ?? Math.max(64 * 1024, Math.min(64 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
    // Never past --memory-max-bytes: /metrics' auditfwd_buffer_bytes and the operator's budget count it.
    this.readAhead = Math.min(opts.memoryMaxBytes, Math.max(256 * 1024, Math.min(opts.memoryMaxBytes / 2, 4 * 1024 * 1024)));
    // The read-ahead comes first; memory holds the overflow only up to what is left.
    this.overflowMax = Math.max(0, opts.memoryMaxBytes - this.readAhead);
    this.disk = new DiskState(opts.dir, io, opts.retryMs ?? 1000, opts.log, this.limited, opts.stats, () => this.wake(this.roomWaiters));
    this.ledger = new Ledger(io, opts.dir, opts.log, (seg) => this.removed(seg));
    this.writer = new SegmentWriter(this.ledger, segmentBytes);
    // Windows alive at once: those the read-ahead's batches are sliced from (the first and last
    // partly sent), the one being parsed, and those of batches the socket has not finished yet.
    // Spare ones kept stay within --memory-max-bytes.
    const keep = Math.min(Math.ceil(this.readAhead / READ_WINDOW) + 4, Math.floor(opts.memoryMaxBytes / READ_WINDOW));
    this.reader = new SegmentReader(this.ledger, opts.log, opts.stats, this.counters, keep);
    this.policy = new FullPolicy(opts, this.counters, this.limited);
    this.spiller = new Spiller(this.mem, this.ledger, this.writer, this.disk, this.counters, opts.log, opts.dir, {
      settle: (item) => this.settle(item),
      free: (item) => this.free(item),
      room: () => this.wake(this.roomWaiters),
    });
  }

  /** Locks the folder, finds what an earlier run left, and starts the fsync timer. */
  static async open(opts: SpillOptions): Promise<SpillBuffer> {
    const unlock = await lockDir(opts.io ?? nodeIo, opts.dir);
    const buf = new SpillBuffer(opts, unlock);
    try {
      await recover(buf.ledger, buf.reader, buf.writer, opts.log);
      await buf.saveCursor();
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
    return this.mem.bytes + this.ledger.unread + this.pendingBytes;
  }
  /** Bytes held in memory: queued, read back, out with the sink, and the overflow. */
  get memoryBytes(): number {
    return this.mem.bytes;
  }
  /** Since when the spill has been at its bound (memory filling up is normal: it spills). */
  get fullSinceMs(): number | undefined {
    return this.fullAt;
  }
  /** Set while the spill cannot be written. */
  get problem(): SpillProblem | undefined {
    return this.disk.problem;
  }
  /** Bytes in the segment files not yet handed on. */
  get spilledBytes(): number {
    return this.ledger.spilledBytes;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  get finished(): boolean {
    return this.isClosed && this.mem.ready === 0 && this.mem.out === 0 && !this.spilling && !this.policy.gapPending;
  }
  /** Whether something that is not in the memory queue comes before anything pushed now. */
  private get spilling(): boolean {
    return this.ledger.unread > 0 || this.pendingOps > 0 || this.mem.overflow.length > 0;
  }

  // ---- the sources' side ----

  async push(batch: Batch): Promise<void> {
    const item = new Item(batch.id ?? nextBatchId(), batch.frames, batch.count, batch.origin);
    item.release = batch.release;
    if (batch.onHandedOn) item.tickets.push(this.order.add(batch.onHandedOn));
    const size = item.frames.length;
    const mem = this.mem;
    for (;;) {
      // Into the spill ahead of the batch; into memory only with a batch that follows (below): lines
      // dropped one by one are named together.
      if (this.policy.gapPending && this.spilling && this.disk.canWrite && this.hasRoom(size + GAP_ROOM)) this.emitGap();
      // With no sink sending (the drain is away), memory holds only a read-ahead's worth, unless
      // the spill cannot take the rest.
      const idle = this.dataWaiters.length === 0 && mem.out === 0;
      const budget = idle && !this.disk.unwritable ? this.readAhead : this.opts.memoryMaxBytes;
      if (!this.spilling && (mem.bytes + size <= budget || mem.bytes === 0)) {
        // A gap record waiting for room goes first, past the bound by its few bytes: no line overtakes it.
        this.emitGap(true);
        mem.push(item);
        this.gotThrough();
        this.wake(this.dataWaiters);
        return;
      }
      if (this.disk.canWrite && this.hasRoom(size)) {
        if (await this.toDisk(item)) return;
        continue;
      }
      if (this.disk.unwritable && this.spilling && this.overflowFits(size)) {
        mem.toOverflow(item, false);
        this.gotThrough();
        return;
      }
      this.fullAt ??= Date.now();
      if (this.opts.whenFull === 'block') {
        this.limited.warn('full', { dir: this.opts.dir, maxBytes: this.opts.maxBytes, unwritable: this.disk.problem?.code }, 'spill full: reading waits (--when-full block)');
        await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
        continue;
      }
      if (this.opts.whenFull === 'drop-oldest' && (await this.dropOldest())) continue;
      this.policy.drop(item);
      return;
    }
  }

  /**
   * The read-back may still take its read-ahead on top of what memory holds. One batch more keeps
   * the overflow moving, but only within --memory-max-bytes: the overflow joins the queue when the
   * reader catches up, and a batch past the bound each time the disk is tried again would add up.
   */
  private overflowFits(size: number): boolean {
    const mem = this.mem;
    if (mem.bytes + size <= this.overflowMax) return true;
    return mem.overflow.length === 0 && (mem.bytes + size <= this.opts.memoryMaxBytes || mem.bytes === 0);
  }

  private gotThrough(): void {
    // Still full while other sources wait for room: /healthz must not flap between them.
    if (this.roomWaiters.length === 0 && this.ledger.diskBytes < this.opts.maxBytes) this.fullAt = undefined;
  }

  private hasRoom(size: number): boolean {
    const used = this.ledger.diskBytes + this.pendingBytes;
    return used + size <= this.opts.maxBytes || used === 0;
  }

  /** Appends a batch; when memory is full, what memory holds goes first, so the order holds. False: not written. */
  private toDisk(item: Item): Promise<boolean> {
    const fromMemory = !this.spilling;
    const size = item.frames.length;
    this.pendingOps++;
    this.pendingBytes += size;
    return this.serial(async () => {
      try {
        if (fromMemory) await this.spiller.writeMemory('memory full');
        return (await this.spiller.flushOverflow()) && (await this.spiller.append(item));
      } finally {
        this.pendingOps--;
        this.pendingBytes -= size;
      }
    }).finally(() => this.afterWrite());
  }

  /** A disk operation that may have changed what comes next in the stream is done. */
  private afterWrite(): void {
    this.catchUp();
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
  }

  // ---- the sink's side ----

  take(): Item | undefined {
    const item = this.mem.take();
    if (item) this.maybeLoad();
    return item;
  }

  waitForData(): Promise<void> {
    if (this.mem.ready > 0 || this.finished) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.dataWaiters.push(resolve));
    this.maybeLoad();
    return p;
  }

  handedOn(batch: Batch): void {
    const item = batch as Item;
    this.mem.handedOn(item);
    this.settle(item);
    this.free(item);
    this.wake(this.roomWaiters);
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
  }

  requeue(batches: Batch[]): void {
    if (batches.length === 0) return;
    this.mem.requeue(batches as Item[]);
    this.wake(this.dataWaiters);
  }

  close(): void {
    this.isClosed = true;
    this.emitGap(true);
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
    this.disk.retryNow();
    this.emitGap(true);
    if (this.mem.hasUndurable()) void this.serial(() => this.spiller.writeMemory('stopping'));
    void this.serial(() => this.spiller.flushOverflow());
    await this.serial(async () => {
      await this.sync();
      if (this.writer.tail) await this.writer.seal(this.writer.tail).catch((err) => this.disk.failed(err));
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

  /** The reader caught up with the spill: the overflow is next in the stream, in memory already. */
  private catchUp(): void {
    if (this.ledger.unread > 0 || this.pendingOps > 0) return;
    if (this.mem.overflowToQueue()) this.wake(this.dataWaiters);
  }

  private async sync(): Promise<void> {
    if (!this.writer.dirty) return;
    await this.writer.syncNow().catch((err) => this.disk.failed(err));
  }

  private async saveCursor(): Promise<void> {
    await this.ledger.saveCursor().catch((err) => this.disk.failed(err));
  }

  private tick(): void {
    this.emitGap(this.isClosed);
    if (this.disk.unwritable && this.disk.canWrite) {
      this.wake(this.roomWaiters);
      void this.serial(() => this.disk.probe());
    }
    if (this.mem.overflow.length > 0 && this.disk.canWrite) this.inChain(() => this.spiller.flushOverflow());
    if (this.disk.canWrite && this.mem.oldestWaitingMs() >= this.opts.fsyncIntervalMs) this.inChain(() => this.spiller.writeMemory('waited longer than the fsync interval'));
    // Checked when the chain gets there, so that the spill written just above is synced now too.
    void this.serial(() => this.sync());
    if (this.ledger.cursorDirty) void this.serial(() => this.saveCursor());
    if (this.ledger.unread > 0) this.maybeLoad();
    // A tail the reader caught up with is sealed, so that it is deleted once it is all sent.
    else if (this.writer.tail && this.pendingOps === 0) void this.serial(() => this.sealCaughtUp());
  }

  /** A write that comes before anything pushed after it. */
  private inChain(op: () => Promise<unknown>): void {
    this.pendingOps++;
    void this.serial(() => op().finally(() => this.pendingOps--)).finally(() => this.afterWrite());
  }

  private async sealCaughtUp(): Promise<void> {
    if (this.ledger.unread === 0 && this.pendingOps === 0 && this.writer.tail) await this.writer.seal(this.writer.tail).catch((err) => this.disk.failed(err));
  }

  // ---- reading back ----

  private maybeLoad(): void {
    if (this.ledger.unread === 0) this.catchUp();
    if (this.loading || this.stopped || this.ledger.unread === 0 || this.mem.bytes - this.mem.overflowBytes >= this.readAhead) return;
    // Read back only for a sink that is sending: behind a dead drain it would be memory for nothing.
    if (this.dataWaiters.length === 0 && this.mem.out === 0) return;
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
      (bytes) => {
        const readBack = this.mem.bytes - this.mem.overflowBytes;
        // Past the read-ahead by no record, nor, with the overflow, past --memory-max-bytes.
        if (bytes === 0) return readBack < this.readAhead;
        return readBack === 0 || (readBack + bytes <= this.readAhead && this.mem.bytes + bytes <= this.opts.memoryMaxBytes);
      },
      (record, release, place) => {
        const item = new Item(record.id ?? nextBatchId(), record.frames, record.count, record.origin);
        item.release = release;
        item.place = place;
        this.mem.push(item);
      },
    );
    if (loaded > 0) this.wake(this.dataWaiters);
    // Caught up: new batches may stay in memory again; the tail is sealed so it can be deleted.
    await this.sealCaughtUp();
    if (this.ledger.unread === 0) {
      if (this.spiller.announced && this.pendingOps === 0) this.opts.log.info({ dir: this.opts.dir }, 'spill caught up; lines stay in memory again');
      this.spiller.announced = this.pendingOps > 0;
      this.catchUp();
      this.wake(this.roomWaiters);
      // The last bytes may have been damage, skipped: nothing was loaded, and the sink waits.
      if (this.finished) this.wake(this.dataWaiters);
    }
    return loaded > 0 || seg.readOff >= seg.size;
  }

  // ---- when full ----

  /**
   * The gap record goes where the hole is: next in the stream. Past --memory-max-bytes only when it
   * must (`force`: a batch follows it, or closing): with memory full it waits, and what is dropped
   * meanwhile joins it, so that lines dropped one by one do not leave a gap record each in memory.
   */
  private emitGap(force = false): void {
    if (!this.policy.gapPending) return;
    const room = (bytes: number) => force || this.mem.bytes + bytes <= this.opts.memoryMaxBytes;
    if (!this.spilling && !this.stopped) {
      if (!room(GAP_ROOM)) return;
      this.mem.push(this.policy.takeGap());
      this.wake(this.dataWaiters);
      return;
    }
    if (!this.disk.canWrite && !room(GAP_ROOM)) return;
    const item = this.policy.takeGap();
    this.inChain(async () => {
      if ((await this.spiller.flushOverflow()) && (await this.spiller.append(item))) return;
      if (room(item.frames.length)) this.mem.toOverflow(item, false);
      else this.policy.giveBack(item);
    });
  }

  /**
   * Drops the oldest data the sink has not taken: the batches read back into memory and the rest
   * of their segment, or a segment nothing was read from yet (rewritten to hold only gap records).
   * False when there is nothing to drop.
   */
  private dropOldest(): Promise<boolean> {
    return this.serial(async () => {
      let memory = this.mem.takeAll();
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
        memory = kept.memory;
        this.mem.bytes -= kept.freedMemory;
        return true;
      } catch (err) {
        this.disk.failed(err);
        return false;
      } finally {
        this.mem.putBack(memory);
        this.wake(this.dataWaiters);
      }
    });
  }

  private wake(waiters: Array<() => void>): void {
    if (waiters.length === 0) return;
    for (const w of waiters.splice(0)) w();
  }
}
