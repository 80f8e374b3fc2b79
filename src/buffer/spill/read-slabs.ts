/**
 * Buffers the spill is read back into, reused. Read-back batches are slices of the window they were
 * read in; a fresh buffer per read (one per record, as most records outgrew the window) made
 * hundreds of short-lived ~0.6 MiB buffers a second while a backlog was sent on, which V8 frees only
 * when it notices the external memory: 102-107 MiB RSS at the peak instead of 80.
 * A window goes back to the pool once the reader is done with it and every batch in it was released.
 */
export class ReadSlabs {
  private readonly spare: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /** A window for `length` bytes; larger than the pool's windows (one big record) it is a one-off. */
  lease(length: number): Slab {
    if (length > this.size) return new Slab(Buffer.allocUnsafeSlow(length), undefined);
    return new Slab(this.spare.pop() ?? Buffer.allocUnsafeSlow(this.size), this);
  }

  giveBack(buf: Buffer): void {
    if (this.spare.length < this.keep) this.spare.push(buf);
  }
}

export class Slab {
  /** The reader's own reference, and one per batch sliced from the window. */
  private refs = 1;

  constructor(
    readonly buf: Buffer,
    private readonly pool: ReadSlabs | undefined,
  ) {}

  /** A reference for one batch; its release (called at most once by the buffer) gives it back. */
  hold(): () => void {
    this.refs++;
    return () => this.unref();
  }

  unref(): void {
    if (--this.refs === 0) this.pool?.giveBack(this.buf);
  }
}
