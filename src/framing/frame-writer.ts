/**
 * Where frames are built: large slabs, reused. A batch is a slice of a slab; once every batch in a
 * slab has been released (handed on), the slab goes back to a small shared pool. Fresh memory for
 * every batch cost page faults and let garbage pile up far beyond the memory budget before the GC
 * noticed it (profiled: a third of the CPU time and 340 MB RSS for a 16 MiB budget).
 */
// One 512 KiB read's frames (raw or k8s-audit) fit one: 1 MiB rather than 2, as a pooled slab costs
// its size in RSS once written through (bench/README.md, RSS: -1.5 to -2 MB at peak, same CPU).
export const SLAB_BYTES = 1024 * 1024;
/** Free slabs kept for reuse across all writers and the spill's read-back; beyond that they are left to the GC. */
const POOL_MAX_SLABS = 8;
const pool: Buffer[] = [];

/**
 * A free slab of SLAB_BYTES. The spill reads back into the same slabs the sources' batches are
 * written in: while it spills, the memory of batches written to disk is what the read-back needs,
 * and two pools each kept their own spares (bench/README.md, RSS).
 */
export function pooledSlab(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES);
}

/** Gives a slab of SLAB_BYTES back for reuse. */
export function returnSlab(buf: Buffer): void {
  if (buf.length === SLAB_BYTES && pool.length < POOL_MAX_SLABS) pool.push(buf);
}

class Slab {
  /** Batches handed out from this slab and not released yet. */
  refs = 0;
  /** No more batches will be written into it. */
  sealed = false;

  constructor(readonly buf: Buffer) {}

  static get(min: number): Slab {
    return new Slab(min <= SLAB_BYTES ? pooledSlab() : Buffer.allocUnsafeSlow(min));
  }

  seal(): void {
    this.sealed = true;
    this.recycle();
  }

  release(): void {
    this.refs--;
    this.recycle();
  }

  private recycle(): void {
    if (this.sealed && this.refs === 0) returnSlab(this.buf);
  }
}

export interface TakenFrames {
  frames: Buffer;
  /** Batch.memory: what the frames keep from reuse until released. */
  memory: number;
  /**
   * Gives the frames' memory back for reuse. Call it once nothing will read `frames` again (after
   * the batch was handed on); never calling it is safe, the memory is then left to the GC.
   */
  release: () => void;
}

const noop = () => {};
/** No room at all: the first byte written moves to a slab. */
const NO_ROOM = Buffer.alloc(0);

/**
 * A byte builder for one batch at a time. Frames for a whole read are written into one slice so that
 * the sink does one write per batch instead of one per line.
 */
export class FrameWriter {
  private slab: Slab;
  private buf: Buffer;
  /** Where the current batch starts in `buf`. */
  private start = 0;
  private len = 0;
  /** The unused end of a slab the current batch moved out of, held by the batches before it there: counted with it (see takeBatch). */
  private carried = 0;

  /** A size below SLAB_BYTES gets memory of its own, not a pooled slab (that writer uses take()). */
  constructor(initialSize = SLAB_BYTES) {
    this.slab = initialSize < SLAB_BYTES ? new Slab(Buffer.allocUnsafe(initialSize)) : Slab.get(initialSize);
    this.buf = this.slab.buf;
  }

  /** Bytes written to the current batch. */
  get length(): number {
    return this.len - this.start;
  }

  /** Drops what was written since the last take (a batch left half-written by a throw). */
  discard(): void {
    this.len = this.start;
  }

  /** Makes room for `extra` more bytes; the current batch moves to a new slab when it does not fit. */
  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const used = this.len - this.start;
    const next = Slab.get(Math.max(used + extra, 2 * used));
    this.buf.copy(next.buf, 0, this.start, this.len);
    if (this.slab.refs > 0) this.carried += this.buf.length - this.start;
    this.slab.seal();
    this.slab = next;
    this.buf = next.buf;
    this.start = 0;
    this.len = used;
  }

  bytes(src: Buffer, start = 0, end = src.length): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.ensure(n);
    // TypedArray#set is a V8 builtin; Buffer#copy goes through layers of JS first (a third of the
    // cost of copying a 1 KB line) and makes a view for a part of a buffer.
    if (start === 0 && end === src.length) this.buf.set(src, this.len);
    else src.copy(this.buf, this.len, start, end);
    this.len += n;
  }

  /** ASCII only: callers pass text that is already restricted to PRINTUSASCII. */
  ascii(s: string): void {
    if (this.len + s.length > this.buf.length) this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  utf8(s: string): void {
    const n = Buffer.byteLength(s);
    if (this.len + n > this.buf.length) this.ensure(n);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  byte(b: number): void {
    if (this.len + 1 > this.buf.length) this.ensure(1);
    this.buf[this.len++] = b;
  }

  /** A non-negative integer in ASCII digits, without going through a string. */
  decimal(n: number): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    if (this.len + digits > this.buf.length) this.ensure(digits);
    let at = this.len + digits;
    this.len = at;
    do {
      this.buf[--at] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  /** Hands out the batch written so far, and its release; the next batch starts after it. */
  takeBatch(): TakenFrames {
    if (this.len === this.start) return { frames: Buffer.alloc(0), memory: 0, release: noop };
    const frames = this.buf.subarray(this.start, this.len);
    const slab = this.slab;
    slab.refs++;
    let released = false;
    this.start = this.len;
    let unused = this.carried;
    this.carried = 0;
    // A slab without room for another batch like this one takes no more: the next would only move
    // out at once, copying what it had written so far. Its unused end is held with this batch.
    if (this.buf.length - this.len < Math.max(this.buf.length / 8, frames.length)) {
      unused += this.buf.length - this.len;
      this.fresh();
    }
    return {
      frames,
      // At most twice the frames: a large batch alone in its slab (a 512 KiB read's) counts the
      // slab, while a small one that happens to end a slab does not count up to an eighth of it, or
      // one such batch would be past a small --memory-max-bytes alone (what goes uncounted is at
      // most that eighth of each slab).
      memory: frames.length + Math.min(unused, frames.length),
      release: () => {
        if (released) return;
        released = true;
        slab.release();
      },
    };
  }

  /**
   * Hands out a copy of the batch written so far, sized to fit, for rare small batches (gap records)
   * that have no release: a slice would hold a whole slab until the GC finds it.
   */
  take(): Buffer {
    const frames = Buffer.from(this.buf.subarray(this.start, this.len));
    this.len = this.start;
    return frames;
  }

  /**
   * The next write takes a slab (ensure). Not at once: the batch just taken may wait for room in
   * the memory budget, and a slab taken now would be one more held through that wait.
   */
  private fresh(): void {
    this.slab.seal();
    this.slab = new Slab(NO_ROOM);
    this.buf = NO_ROOM;
    this.start = 0;
    this.len = 0;
  }
}

let shared: FrameWriter | undefined;

/**
 * One writer for every source of the process. Safe because a batch is written and taken within one
 * synchronous call (LineBatcher.process/flush), and it keeps one partly filled slab in the process
 * instead of one per followed file.
 */
export function sharedFrameWriter(): FrameWriter {
  shared ??= new FrameWriter();
  return shared;
}
