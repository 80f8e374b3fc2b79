import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import { RateLimitedLog, type Logger } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import { nextBatchId } from '../../batch.js';
import { DiskState, type SpillProblem } from './disk-state.js';
import { nodeIo, type SpillIo } from './io.js';
import { Item, Ledger, newCounters, type Segment } from './ledger.js';
import { MemoryQueue } from './memory-queue.js';
import { InOrder, type Ticket } from './order.js';
import { READ_WINDOW, SegmentReader } from './reader.js';
import { Spiller } from './spiller.js';
import { OutCopies } from './out-copies.js';
import { FullPolicy, type WhenFull } from './when-full.js';
import { SegmentWriter } from './writer.js';

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
 * The spill's machinery under SpillBuffer: its parts wired together, the serial chain every disk
 * operation runs on, reading back into memory, and what follows when a batch is handed on or
 * durable. SpillBuffer adds the sources' and the sink's side, the timer and --when-full.
 */
export abstract class SpillCore {
  protected readonly mem = new MemoryQueue();
  protected pendingOps = 0;
  protected pendingBytes = 0;
  protected chain: Promise<unknown> = Promise.resolve();
  private loading = false;
  protected isClosed = false;
  protected stopped = false;
  protected roomWaiters: Array<() => void> = [];
  protected dataWaiters: Array<() => void> = [];
  protected readonly order = new InOrder();
  /**
   * Commits of spilled batches not yet fsynced, by batch id: run when the fsync comes, or earlier
   * when the record read back is handed on (sent is as good as durable), so that a source's position
   * follows what the drain got and not only the fsync interval.
   */
  private readonly unsynced = new Map<number, Ticket[]>();
  /**
   * When a push first found the spill at --buffer-max-bytes (or unwritable with memory full).
   * Only sending frees room (dropping keeps the spill at its bound), so only a sent segment's
   * removal, or a push that gets through, clears it.
   */
  protected fullAt: number | undefined;
  protected timer: NodeJS.Timeout | undefined;
  /** A quick save of the cursor is due: what was handed on from the spill. */
  protected quickTimer: NodeJS.Timeout | undefined;
  protected readonly limited: RateLimitedLog;
  protected readonly readAhead: number;
  protected readonly overflowMax: number;
  protected readonly disk: DiskState;
  protected readonly ledger: Ledger;
  protected readonly writer: SegmentWriter;
  protected readonly reader: SegmentReader;
  protected readonly policy: FullPolicy;
  protected readonly spiller: Spiller;
  protected readonly outCopies: OutCopies;
  readonly counters = newCounters();

  protected constructor(
    protected readonly opts: SpillOptions,
    protected readonly unlock: () => Promise<void>,
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
    // Read-back windows come from the frame writer's pool of slabs (read-slabs.ts).
    this.reader = new SegmentReader(this.ledger, opts.log, opts.stats, this.counters);
    this.policy = new FullPolicy(opts, this.counters, this.limited);
    this.outCopies = new OutCopies(
      this.ledger,
      this.reader,
      (op) => void this.serial(async () => op()).finally(() => this.afterWrite()),
      () => this.cursorMoved(),
    );
    this.spiller = new Spiller(this.mem, this.ledger, this.writer, this.disk, this.counters, opts.log, opts.dir, {
      settle: (item) => this.settle(item),
      spilled: (item) => {
        if (item.tickets.length === 0) return;
        this.unsynced.set(item.id, item.tickets);
        // write() is done: the record outlives a kill -9 (the page cache does), and the next run
        // sends it again, so its source may skip its lines after a kill -9 in this boot.
        for (const t of item.tickets) this.order.soften(t);
      },
      free: (item) => this.free(item),
      room: () => this.wake(this.roomWaiters),
      copies: this.outCopies,
    });
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
  protected get spilling(): boolean {
    return this.ledger.unread > 0 || this.pendingOps > 0 || this.mem.overflow.length > 0;
  }

  // ---- completion ----

  /** The frames' memory goes back to their owner: they were sent, or are on disk. */
  protected free(item: Item): void {
    const release = item.release;
    item.release = undefined;
    release?.();
  }

  /** The batch is handed on or durable: its commits may run, its place in a segment is free. */
  protected settle(item: Pick<Item, 'id' | 'tickets' | 'place' | 'covers'>): void {
    for (const t of item.tickets) this.order.complete(t);
    const spilled = this.unsynced.get(item.id);
    if (spilled) {
      this.unsynced.delete(item.id);
      for (const t of spilled) this.order.complete(t);
    }
    if (item.place && !item.place.done) this.ledger.release(item.place);
    if (item.covers) for (const p of item.covers) if (!p.done) this.ledger.release(p);
  }

  protected removed(seg: Segment): void {
    this.fullAt = undefined;
    void this.serial(() => this.ledger.deleteFile(seg));
    this.wake(this.roomWaiters);
  }

  // ---- writing ----

  protected serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch((err) => this.limited.warn('op', { err: String(err), dir: this.opts.dir }, 'spill operation failed'));
    return p;
  }

  /** The reader caught up with the spill: the overflow is next in the stream, in memory already. */
  protected catchUp(): void {
    if (this.ledger.unread > 0 || this.pendingOps > 0) return;
    if (this.mem.overflowToQueue()) this.wake(this.dataWaiters);
  }

  protected async sync(): Promise<void> {
    if (!this.writer.dirty) return;
    await this.writer.syncNow().catch((err) => this.disk.failed(err));
  }

  protected async saveCursor(): Promise<void> {
    await this.ledger.saveCursor().catch((err) => this.disk.failed(err));
  }

  /** A write that comes before anything pushed after it. */
  protected inChain(op: () => Promise<unknown>): void {
    this.pendingOps++;
    void this.serial(() => op().finally(() => this.pendingOps--)).finally(() => this.afterWrite());
  }

  protected async sealCaughtUp(): Promise<void> {
    if (this.ledger.unread === 0 && this.pendingOps === 0 && this.writer.tail) await this.writer.seal(this.writer.tail).catch((err) => this.disk.failed(err));
  }

  /** A copy was let go: the cursor that says so is saved now (the buffer). */
  protected abstract cursorMoved(): void;

  /** A disk operation that may have changed what comes next in the stream is done. */
  protected afterWrite(): void {
    this.catchUp();
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
  }

  // ---- reading back ----

  protected maybeLoad(): void {
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
  protected async load(): Promise<boolean> {
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
        if (this.outCopies.skip(record.id, place)) return release();
        const item = new Item(record.id ?? nextBatchId(), record.frames, record.count, record.origin, record.keys);
        item.release = release;
        item.place = place;
        this.mem.push(item);
      },
      Math.min(this.readAhead - (this.mem.bytes - this.mem.overflowBytes), this.opts.memoryMaxBytes - this.mem.bytes),
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

  protected wake(waiters: Array<() => void>): void {
    if (waiters.length === 0) return;
    for (const w of waiters.splice(0)) w();
  }
}
