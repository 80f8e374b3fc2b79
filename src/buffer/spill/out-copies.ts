import { forEachFrame } from '../../framing/octet.js';
import { Item, type Ledger, type Place, type Segment } from './ledger.js';
import type { SegmentReader } from './reader.js';

/** Where a copy was written: its segment and its record's bytes there. */
export interface CopyAt {
  seg: Segment;
  start: number;
  end: number;
}

interface CopyState {
  at: CopyAt;
  /** The original was handed on: the copy, read back, is released unsent. */
  handedOn: boolean;
  /** The copy was read back while the original was alive: released when the original is handed on. */
  place?: Place;
}

/**
 * When the spill starts, the batches out with the sink hold back the soft positions (Batch.onSpilled)
 * of everything spilled after them: not handed on, they must be read again from their files after a
 * kill -9, and then the spill, which the next run sends first, repeats all it held (1,254 to 3,000
 * lines in crash-loop runs, docs/design.md). So the rest of each (past its last committed mark) is
 * written to the spill first, as a copy: the soft frontier passes it, and a kill -9 repeats what of it
 * the drain already had. The copy is for the next run only: read back while the original is alive
 * (out with the sink, or given back) it is not sent, and its place is released once the original is
 * handed on. Never released before that: until then it may be the batch's only durable copy.
 */
export class OutCopies {
  private readonly byId = new Map<number, CopyState>();
  private readonly handedOnWhileWriting = new Set<number>();

  constructor(
    private readonly ledger: Ledger,
    private readonly reader: SegmentReader,
    /** Runs `op` on the spill's serial chain (where the reader moves too), then what follows a read. */
    private readonly serial: (op: () => void) => void,
    /** A copy was let go (its place released, or passed over): the cursor is to be saved. */
    private readonly letGo: () => void,
  ) {}

  /** The copy of `out` to append; undefined when nothing is left of it, or it has per-line keys. */
  static copyOf(out: Item): Item | undefined {
    if (out.copied || out.place || out.keys) return undefined;
    const from = out.progressed > 0 && out.marks ? out.marks.bytes[out.progressed - 1] : 0;
    if (from >= out.frames.length) return undefined;
    // Its own bytes: the original's go back to their slab when the sink hands it on.
    const frames = Buffer.from(out.frames.subarray(from));
    const copy = new Item(out.id, frames, forEachFrame(frames, () => {}), out.origin);
    copy.tickets = out.tickets;
    return copy;
  }

  /** Before the copy is appended (the sink may hand the original on meanwhile). */
  writing(out: Item): void {
    out.copied = true;
  }

  /** The copy is in the spill at `at`; or, `at` undefined, it could not be written. */
  written(out: Item, at: CopyAt | undefined): void {
    const early = this.handedOnWhileWriting.delete(out.id);
    if (!at) {
      out.copied = false;
      return;
    }
    this.byId.set(out.id, { at, handedOn: false });
    if (early) this.handedOn(out);
  }

  /** The sink handed `item` on: its copy is not needed any more. */
  handedOn(item: Item): void {
    if (!item.copied) return;
    const c = this.byId.get(item.id);
    if (!c) {
      this.handedOnWhileWriting.add(item.id);
      return;
    }
    if (c.place) {
      this.ledger.release(c.place);
      this.byId.delete(item.id);
      this.letGo();
      return;
    }
    c.handedOn = true;
    // Not read yet: passed over now if it is next to read (the next run must not send it, and a clean
    // stop does not read on); else when it is read.
    this.serial(() => {
      if (this.byId.get(item.id) !== c || c.at.seg.removed || c.at.seg.readOff !== c.at.start) return;
      this.ledger.release(this.reader.pass(c.at.seg, c.at.end - c.at.start));
      this.byId.delete(item.id);
      this.letGo();
    });
  }

  /**
   * The original, given back by the sink, is to be moved to the spill. Its copy read back already:
   * the copy's place becomes its place (it counts as read back, as it is). Not read yet: the copy
   * covers it (Item.covered): it is in the spill where the batch belongs, before everything spilled
   * since, so the batch is not written again; read, the copy is passed over while the batch lives,
   * and released once the batch is handed on. A batch left to its copy alone (dropped from memory)
   * came after what memory then sent while the disk refused the rest: out of order; a copy passed
   * over at once left the batch durable nowhere: lost at a stop with the disk refusing.
   */
  adopt(item: Item): void {
    const c = this.byId.get(item.id);
    if (!c) {
      item.copied = false;
      return;
    }
    if (c.place) {
      this.byId.delete(item.id);
      item.copied = item.covered = false;
      item.place = c.place;
      return;
    }
    item.covered = true;
  }

  /**
   * A covered batch was written again, durably, in a front segment (memory's read-back batches go
   * there so that the order holds): its copy is passed over, next to read as it is. Were it not
   * (never seen), it is left to be sent: a duplicate. Marked, it would be skipped by its id, and the
   * front segment's record, read first, has the same id.
   */
  rewritten(item: Item): void {
    const c = this.byId.get(item.id);
    item.covered = item.copied = false;
    if (!c) return;
    this.byId.delete(item.id);
    if (c.place) this.ledger.release(c.place);
    else if (!c.at.seg.removed && c.at.seg.readOff === c.at.start) this.ledger.release(this.reader.pass(c.at.seg, c.at.end - c.at.start));
    else return;
    this.letGo();
  }

  /**
   * Whether `seg` holds a copy still tracked here. --when-full drop-oldest passes such a segment by: a
   * gap record for the copy would name lines the original delivers, and a copy rewritten away would
   * leave its soft positions standing for nothing after a kill.
   */
  holdsCopy(seg: Segment): boolean {
    for (const c of this.byId.values()) if (c.at.seg === seg) return true;
    return false;
  }

  /** A record read back: true when it is a copy not to send (its place released, or kept until then). */
  skip(id: number | undefined, place: Place): boolean {
    const c = id === undefined || this.byId.size === 0 ? undefined : this.byId.get(id);
    if (!c) return false;
    if (c.handedOn) {
      this.ledger.release(place);
      this.byId.delete(id!);
      this.letGo();
    } else c.place = place;
    return true;
  }
}
