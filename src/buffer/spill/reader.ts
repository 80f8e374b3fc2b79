import type { Logger } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import { pooledSlab, returnSlab, SLAB_BYTES } from '../../framing/frame-writer.js';
import { errCode } from './io.js';
import type { Counters, Ledger, Place, Segment } from './ledger.js';
import { ReadSlabs } from './read-slabs.js';
import { findMagic, HEADER_BYTES, MAGIC, MAX_BODY_BYTES, parseRecord, type DecodedRecord, type Parsed } from './disk-record.js';

/** Windows are frame-writer slabs; a record larger than one (a batch that filled its slab) is read alone into its own buffer. */
export const READ_WINDOW = SLAB_BYTES;
/** Read past what the caller wants: the record that crosses that point is read whole. */
const RECORD_SLACK = 64 * 1024;

/** A record read back: its frames are a slice of a read window, held until `release`. */
export type ReadBack = (record: DecodedRecord, release: () => void, place: Place) => void;

/**
 * Reads segments back in windows, skips damaged records (keeping the segment aside afterwards) and
 * cuts off a torn tail that a crash left.
 */
export class SegmentReader {
  readonly slabs: ReadSlabs;

  constructor(
    private readonly ledger: Ledger,
    private readonly log: Logger,
    private readonly stats: Stats,
    private readonly counters: Counters,
  ) {
    this.slabs = new ReadSlabs(READ_WINDOW, pooledSlab, returnSlab);
  }

  /**
   * Reads records of `seg` from where the reader stopped while `fits(bytes)` says the next one (0: any) fits; returns how many.
   * `want` is about how many bytes the caller can take: no more is read (plus room for a record's
   * end), so that the window is not read past what is used and the next read goes after it.
   * A segment file that is gone (its folder deleted) is given up with an error: nothing else can be done.
   */
  async load(seg: Segment, fits: (bytes: number) => boolean, emit: ReadBack, want = READ_WINDOW): Promise<number> {
    try {
      seg.reader ??= await this.ledger.io.open(this.ledger.path(seg), 'read');
    } catch (err) {
      const code = errCode(err);
      if (code !== 'ENOENT' && code !== 'ELOOP') throw err;
      // Gone, or replaced by a symlink (never followed: it could point at anything).
      this.log.error({ segment: this.ledger.path(seg), bytes: seg.size - seg.readOff, code }, 'spill segment file is gone or not a plain file; its lines are lost');
      this.counters.skippedBytes += seg.size - seg.readOff;
      this.skip(seg, seg.size - seg.readOff);
      return 0;
    }
    const first = Math.min(READ_WINDOW, seg.size - seg.readOff, Math.max(want, 0) + RECORD_SLACK);
    // The window read into; the batches sliced from it hold it too, until they are released.
    let lease = this.slabs.lease(first);
    let at = 0;
    // Bytes of the lease that records sliced from it hold: never read into again.
    let taken = 0;
    const reread = (length: number): Promise<Buffer> => {
      this.slabs.done(lease, taken);
      taken = 0;
      lease = this.slabs.lease(length);
      return this.readInto(seg, seg.readOff, lease.slab.buf.subarray(lease.start), length);
    };
    let loaded = 0;
    try {
      let window = await this.readInto(seg, seg.readOff, lease.slab.buf.subarray(lease.start), first);
      while (at < window.length && fits(0)) {
        const p = parseRecord(window, at);
        if (p.kind === 'record') {
          if (!fits(p.record.frames.length)) break;
          const place = { seg, end: seg.readOff + p.next, done: false };
          seg.places.push(place);
          emit(p.record, lease.slab.hold(), place);
          at = taken = p.next;
          loaded++;
          continue;
        }
        if (p.kind === 'short' && seg.readOff + at + p.need <= seg.size) {
          if (at > 0) break; // the next call reads from this record's start
          window = await reread(p.need);
          continue;
        }
        this.ledger.advance(seg, at);
        at = 0;
        await this.skipDamage(seg, p);
        if (seg.readOff >= seg.size) break;
        window = await reread(Math.min(READ_WINDOW, seg.size - seg.readOff));
      }
    } finally {
      this.slabs.done(lease, taken);
    }
    this.ledger.advance(seg, at);
    if (seg.readOff >= seg.size) {
      await seg.reader?.close().catch(() => {});
      seg.reader = undefined;
      this.ledger.maybeRemove(seg);
    }
    return loaded;
  }

  /** Every record of `seg` from `from` on, in order; stops at the first damaged one (returned as its offset). */
  async *records(seg: Segment, from: number): AsyncGenerator<DecodedRecord, number> {
    seg.reader ??= await this.ledger.io.open(this.ledger.path(seg), 'read');
    let pos = from;
    while (pos < seg.size) {
      const p = await this.recordAt(seg, pos);
      if (p.kind !== 'record') return pos;
      yield p.record;
      pos += p.next; // recordAt parses from 0
    }
    return pos;
  }

  /** The bytes from readOff on count as read and handed on (lost). */
  skip(seg: Segment, bytes: number): void {
    this.ledger.release(this.pass(seg, bytes));
  }

  /** The bytes from readOff on count as read; their place is released by the caller. */
  pass(seg: Segment, bytes: number): Place {
    const place = { seg, end: seg.readOff + bytes, done: false };
    seg.places.push(place);
    this.ledger.advance(seg, bytes);
    return place;
  }

  private readAt(seg: Segment, pos: number, length: number): Promise<Buffer> {
    return this.readInto(seg, pos, Buffer.allocUnsafe(length), length);
  }

  private async readInto(seg: Segment, pos: number, buf: Buffer, length: number): Promise<Buffer> {
    let got = 0;
    while (got < length) {
      const n = await seg.reader!.read(buf, got, length - got, pos + got);
      if (n === 0) break;
      got += n;
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
   * The record at readOff is damaged: the bytes up to the next intact record (or the end) are
   * skipped, and the segment is kept aside afterwards. (A torn write, cut short by a crash, is only
   * ever at the end of the last segment, and cut off at start by cutTornTail.)
   */
  private async skipDamage(seg: Segment, failure: Parsed): Promise<void> {
    const from = seg.readOff;
    const next = await this.nextRecord(seg, from + 1);
    const file = this.ledger.path(seg);
    const skip = (next === -1 ? seg.size : next) - from;
    if (!seg.corrupt) this.counters.corruptSegments++;
    seg.corrupt = true;
    this.counters.skippedBytes += skip;
    this.stats.spillCorrupt++;
    this.log.error(
      { segment: file, offset: from, skippedBytes: skip, reason: failure.kind === 'bad' ? failure.reason : 'length past the end' },
      'damaged record in a spill segment skipped; the segment is kept aside once the rest is sent',
    );
    this.skip(seg, skip);
  }

  /** Where the first intact record at or after `from` starts, or -1. */
  private async nextRecord(seg: Segment, from: number): Promise<number> {
    seg.reader ??= await this.ledger.io.open(this.ledger.path(seg), 'read');
    for (let pos = from; pos < seg.size; ) {
      const window = await this.readAt(seg, pos, Math.min(READ_WINDOW, seg.size - pos));
      for (let i = findMagic(window, 0); i !== -1; i = findMagic(window, i + 1)) {
        if ((await this.recordAt(seg, pos + i)).kind === 'record') return pos + i;
      }
      if (window.length <= 3) break;
      pos += window.length - 3;
    }
    return -1;
  }

  /**
   * Only the segment with the highest number was being appended to when an earlier run stopped;
   * the others were sealed, or written whole and renamed into place. Walks its record headers and
   * cuts off a record that runs past the end of the file: a write the crash interrupted.
   */
  async cutTornTail(seg: Segment): Promise<void> {
    const file = this.ledger.path(seg);
    const f = await this.ledger.io.open(file, 'update');
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      let pos = 0;
      while (pos < seg.size) {
        const got = await f.read(head, 0, HEADER_BYTES, pos);
        if (got === HEADER_BYTES && head.readUInt32BE(0) !== MAGIC) return; // damage, not a torn write: found when read
        const len = got === HEADER_BYTES ? head.readUInt32BE(4) : 0;
        if (got < HEADER_BYTES || pos + HEADER_BYTES + len > seg.size) break;
        pos += HEADER_BYTES + len;
      }
      if (pos >= seg.size) return;
      // A damaged length looks the same; but intact records after it mean damage, found when read.
      if ((await this.nextRecord(seg, pos + 1)) !== -1) return;
      const cut = seg.size - pos;
      await f.truncate(pos);
      await f.sync();
      this.counters.tornTails++;
      this.log.warn({ segment: file, offset: pos, bytes: cut }, 'torn record at the end of a spill segment cut off (a crash during a write)');
      this.ledger.unread -= seg.size - seg.readOff;
      this.ledger.diskBytes -= cut;
      seg.size = pos;
      // A cursor past the cut (sent, but the power went before the data was synced) stops there.
      seg.readOff = seg.acked = Math.min(seg.acked, pos);
      this.ledger.unread += seg.size - seg.readOff;
    } finally {
      await f.close();
    }
  }
}
