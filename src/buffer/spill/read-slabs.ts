/**
 * Buffers the spill is read back into, reused. Read-back batches are slices of the window they were
 * read in; a fresh buffer per read (one per record, as most records outgrew the window) made
 * hundreds of short-lived ~0.6 MiB buffers a second while a backlog was sent on, which V8 frees only
 * when it notices the external memory: 102-107 MiB RSS at the peak instead of 80.
 * A window is filled read after read: each read goes after the records the ones before took, as
 * long as it has room. A fresh window per read held 2 MiB for each batch of about 0.5 MiB that was
 * waiting for the socket (bench/README.md, RSS: up to 15 windows alive, 33 MB, with a 4 MiB budget).
 * A window goes back to the pool once it is no longer filled and every batch in it was released.
 */
export class ReadSlabs {
  /** The window being filled, and how much of it records took. */
  private current: Slab | undefined;
  private used = 0;

  /** Windows of `size` bytes from `take`, given back to `giveBack` (the frame writer's pool of slabs). */
  constructor(
    readonly size: number,
    private readonly take: () => Buffer,
    readonly giveBack: (buf: Buffer) => void,
  ) {}

  /**
   * Room for reading `length` bytes: the free part of the current window if it has that much, else a
   * fresh window; larger than the windows (one big record) it is a one-off. Held until `done`.
   */
  lease(length: number): Lease {
    if (length > this.size) return { slab: new Slab(Buffer.allocUnsafeSlow(length), undefined), start: 0 };
    if (!this.current || this.size - this.used < length) {
      // The pool's own reference on the window it fills goes; batches and the reader may still hold it.
      this.current?.unref();
      this.current = new Slab(this.take(), this);
      this.used = 0;
    }
    this.current.hold();
    return { slab: this.current, start: this.used };
  }

  /** The first `taken` bytes of the lease are records now (sliced by batches); the rest may be read into again. */
  done(lease: Lease, taken: number): void {
    if (lease.slab === this.current && lease.start === this.used) this.used += taken;
    lease.slab.unref();
  }
}

export interface Lease {
  slab: Slab;
  /** Where in `slab.buf` the read goes. */
  start: number;
}

export class Slab {
  /** Its first holder's reference (the pool's while it fills it, or the reader's for a one-off), and one per batch sliced from it. */
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
