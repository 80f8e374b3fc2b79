import { nextBatchId, type Batch, type BatchBuffer } from '../../batch.js';
import type { SpillProblem } from './disk-state.js';
import { lockDir } from './files.js';
import { nodeIo } from './io.js';
import { Item } from './ledger.js';
import { recover } from './recover.js';
import { SpillCore, type SpillOptions } from './spill-core.js';
import type { WhenFull } from './when-full.js';

export type { SpillOptions, SpillProblem, WhenFull };
export { SpillError } from './io.js';

/** Room a gap record needs: a few hundred bytes per range it names. */
const GAP_ROOM = 2048;
/** As the file checkpoints' quick save: duplicates after kill -9 are what was handed on in about this long. */
const QUICK_CURSOR_MS = 50;

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
export class SpillBuffer extends SpillCore implements BatchBuffer {
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

  // ---- the sources' side ----

  /** Sources waiting in roomWithin (among roomWaiters): paced by the drain, not blocked by a full spill. */
  private pacing = 0;

  async push(batch: Batch): Promise<void> {
    const item = new Item(batch.id ?? nextBatchId(), batch.frames, batch.count, batch.origin, batch.keys, batch.memory);
    item.release = batch.release;
    item.marks = batch.marks;
    if (batch.onHandedOn) item.tickets.push(this.order.add(batch.onHandedOn, batch.onSpilled));
    // Memory is counted in what the batch holds (Item.memory), the spill in bytes written.
    const size = item.memory;
    const diskSize = item.frames.length;
    const mem = this.mem;
    let waitUntil: number | undefined;
    for (;;) {
      // Into the spill ahead of the batch; into memory only with a batch that follows (below): lines
      // dropped one by one are named together.
      if (this.policy.gapPending && this.spilling && this.disk.canWrite && this.hasRoom(diskSize + GAP_ROOM)) this.emitGap();
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
      // A gap record waiting for room goes ahead of the batch: the batch needs room for both, or
      // it is dropped too and named by the same record.
      if (this.disk.canWrite && this.hasRoom(diskSize + (this.policy.gapPending ? GAP_ROOM : 0))) {
        // Paced by a drain that is sending (Batch.canWait), within the time a line may wait in
        // memory before it is spilled anyway. While spilling, batches go after the spill's.
        if (batch.canWait && !this.spilling && !idle) {
          waitUntil ??= Date.now() + this.opts.fsyncIntervalMs;
          const left = waitUntil - Date.now();
          if (left > 0 && (await this.roomWithin(left))) continue;
        }
        this.emitGap(true);
        if (await this.toDisk(item)) return;
        continue;
      }
      if (this.disk.unwritable && this.spilling && this.overflowFits(size)) {
        if (this.policy.gapPending) mem.toOverflow(this.policy.takeGap(), false);
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

  /** Waits at most `ms` for room (a batch handed on, or anything else that wakes roomWaiters); false when none came. */
  private roomWithin(ms: number): Promise<boolean> {
    this.pacing++;
    return new Promise<boolean>((resolve) => {
      const woken = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const k = this.roomWaiters.indexOf(woken);
        if (k !== -1) this.roomWaiters.splice(k, 1);
        resolve(false);
      }, ms);
      this.roomWaiters.push(woken);
    }).finally(() => this.pacing--);
  }

  private gotThrough(): void {
    // Still full while other sources wait for room: /healthz must not flap between them.
    if (this.roomWaiters.length === this.pacing && this.ledger.diskBytes < this.opts.maxBytes) this.fullAt = undefined;
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
    this.outCopies.handedOn(item);
    this.settle(item);
    if (this.ledger.cursorQuickDirty) this.saveCursorSoon();
    this.free(item);
    this.wake(this.roomWaiters);
    this.maybeLoad();
    if (this.finished) this.wake(this.dataWaiters);
  }

  progress(batch: Batch, k: number): void {
    const item = batch as Item;
    // Only once every commit before this batch's has run (they may wait for an fsync).
    if (item.marks && item.tickets.length === 1 && this.order.isNext(item.tickets[0])) {
      item.marks.progress(k);
      item.progressed = k + 1;
    }
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
    clearTimeout(this.quickTimer);
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
    clearTimeout(this.quickTimer);
    this.stopped = true;
    this.isClosed = true;
  }

  /**
   * Now, not QUICK_CURSOR_MS later: a kill -9 before the save sends the copy again, and copies are let
   * go right after the spill starts, when kills come (a crash loop's run dies while it catches up):
   * 952 lines sent twice in a crash-loop run. Few copies, so few saves (a write and a rename each).
   */
  protected cursorMoved(): void {
    if (!this.stopped && this.disk.canWrite) void this.serial(() => this.ledger.saveCursor(true).catch((err) => this.disk.failed(err)));
  }

  /**
   * What was handed on from the spill reaches cursor.json within QUICK_CURSOR_MS, without fsync (that
   * stays on the interval): a restart after kill -9 does not send a read-back backlog again.
   */
  private saveCursorSoon(): void {
    if (this.quickTimer || this.stopped) return;
    this.quickTimer = setTimeout(() => {
      this.quickTimer = undefined;
      if (!this.stopped && this.disk.canWrite) void this.serial(() => this.ledger.saveCursor(true).catch((err) => this.disk.failed(err)));
    }, QUICK_CURSOR_MS);
    this.quickTimer.unref();
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
      if (room(item.memory)) this.mem.toOverflow(item, false);
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
      const victim = this.ledger.segs.find((s) => !s.removed && !s.gapsOnly && (s.readOff < s.size || waiting.has(s)) && !this.outCopies.holdsCopy(s));
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
}
