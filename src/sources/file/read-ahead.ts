import type { PositionalReader } from '../../state/file-identity.js';

interface Pending {
  fh: PositionalReader;
  pos: number;
  buf: Buffer;
  bytesRead: Promise<number>;
}

/**
 * Positional file reads, double-buffered: when a read comes back full (more is likely waiting), the
 * next chunk is already being read into the other buffer while the caller splits and frames this one.
 * The profile showed the main thread idle for a third of a catch-up run, waiting for each read to
 * come back from libuv's thread pool before it could go on.
 */
export class ReadAhead {
  /** The second is made on the first full read: a file that is only followed never needs it. */
  private readonly bufs: Buffer[];
  private ahead: Pending | undefined;

  constructor(private readonly chunkBytes: number) {
    this.bufs = [Buffer.allocUnsafe(chunkBytes)];
  }

  /**
   * The bytes of `fh` from `pos` (empty at the end of the file). The returned view is valid until the
   * next call: callers copy what they keep (the line splitter and the frame writer do).
   */
  async read(fh: PositionalReader, pos: number): Promise<Buffer> {
    const a = this.ahead;
    this.ahead = undefined;
    let got: Pending;
    if (a && a.fh === fh && a.pos === pos) {
      got = a;
    } else {
      // Nothing may still be writing into a buffer we hand out.
      if (a) await a.bytesRead.catch(() => 0);
      got = this.start(fh, pos);
    }
    const n = await got.bytesRead;
    if (n === got.buf.length) this.ahead = this.start(fh, pos + n, got.buf);
    return got.buf.subarray(0, n);
  }

  /** Waits for a read still in flight (before the file is closed); its bytes are dropped. */
  async settle(): Promise<void> {
    const a = this.ahead;
    this.ahead = undefined;
    if (a) await a.bytesRead.catch(() => 0);
  }

  /** Reads into a buffer other than `busy` (the one the caller is about to work on). */
  private start(fh: PositionalReader, pos: number, busy?: Buffer): Pending {
    const buf = busy === this.bufs[0] ? (this.bufs[1] ??= Buffer.allocUnsafe(this.chunkBytes)) : this.bufs[0];
    const bytesRead = fh.read(buf, 0, buf.length, pos).then((r) => r.bytesRead);
    // Handled when it is awaited; until then a failure must not count as unhandled.
    bytesRead.catch(() => {});
    return { fh, pos, buf, bytesRead };
  }
}
