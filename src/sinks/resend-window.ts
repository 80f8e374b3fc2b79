import { forEachFrame } from '../framing/octet.js';

interface Chunk {
  /** Where its first byte is in the stream of bytes recorded (the ring holds it at `at % size`). */
  at: number;
  length: number;
  count: number;
  /** The connection that carried them last (any object naming it: its socket). */
  carrier?: object;
  /** Its carrier was lost: to be sent again. */
  pending?: boolean;
}

/**
 * Plain TCP/TLS has no acknowledgement: a batch counts as handed on once the kernel took its bytes,
 * and a drain that dies takes with it what sat in both kernels' buffers (megabytes on a fast link).
 * The window keeps a copy of the last `maxBytes` of complete frames handed to a socket; after a
 * connection ends without auditfwd closing it, those it carried are sent first on the next
 * connection (to the same drain or another pool member). A drain that crashed loses nothing its
 * buffers held; one that survived sees at most `maxBytes` again (deduplicable on the content).
 * Only what the lost connection carried: a pool member on standby whose idle connection drops
 * causes no resend.
 *
 * Copies, never references: a handed-on batch's memory goes back to its writer's slabs. The copies
 * go into one ring of `maxBytes`, made on the first record: a fresh Buffer per batch (and another
 * for each trim) left 10-25 MB of dead copies waiting for the GC at full speed (bench/README.md, RSS).
 */
export class ResendWindow {
  private ring: Buffer | undefined;
  private chunks: Chunk[] = [];
  /** Bytes recorded since the start: the stream position after the newest chunk. */
  private end = 0;
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** `frames` (octet-counted, `count` of them) were handed to the socket of `carrier`. */
  record(frames: Buffer, count: number, carrier?: object): void {
    if (this.maxBytes === 0 || frames.length === 0) return;
    const chunk = frames.length > this.maxBytes ? tail(frames, frames.length - this.maxBytes) : { frames, count };
    if (chunk.count === 0) return;
    const n = chunk.frames.length;
    // Room first: the frames dropped are walked by their octet counts before new bytes overwrite them.
    // A batch cut to fit leaves nothing older: the window is always one run of the newest frames.
    this.trim(n < frames.length ? 0 : this.maxBytes - n);
    this.copyIn(chunk.frames);
    this.chunks.push({ at: this.end, length: n, count: chunk.count, carrier });
    this.end += n;
    this.bytes += n;
  }

  /** `carrier` ended without auditfwd closing it: what it carried goes out again first. */
  lost(carrier?: object): void {
    for (const c of this.chunks) if (c.carrier === carrier) c.pending = true;
  }

  /** After a lost connection, the frames to send first on `carrier` (oldest first), once; else undefined. */
  takeReplay(carrier?: object): Array<{ frames: Buffer; count: number }> | undefined {
    const out = this.chunks.filter((c) => c.pending);
    if (out.length === 0) return undefined;
    for (const c of out) {
      c.pending = false;
      c.carrier = carrier;
    }
    // Copies: the socket may still hold them when later records reuse the ring.
    return out.map((c) => ({ frames: this.copyOut(c), count: c.count }));
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** Drops the oldest frames, whole ones, until at most `limit` bytes are held. */
  private trim(limit: number): void {
    while (this.bytes > limit) {
      const first = this.chunks[0];
      const excess = this.bytes - limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
        continue;
      }
      let skipped = 0;
      let dropped = 0;
      while (skipped < excess) {
        skipped += this.frameBytesAt(first.at + skipped);
        dropped++;
      }
      first.at += skipped;
      first.length -= skipped;
      first.count -= dropped;
      this.bytes -= skipped;
      if (first.count === 0) this.chunks.shift();
    }
  }

  /** The length of the whole frame ("LEN SP MSG") starting at stream position `pos`. */
  private frameBytesAt(pos: number): number {
    const ring = this.ring!;
    let i = pos % ring.length;
    let len = 0;
    let digits = 0;
    while (ring[i] !== 0x20) {
      len = len * 10 + (ring[i] - 0x30);
      digits++;
      i = i + 1 === ring.length ? 0 : i + 1;
    }
    return digits + 1 + len;
  }

  private copyIn(frames: Buffer): void {
    this.ring ??= Buffer.allocUnsafeSlow(this.maxBytes);
    const ring = this.ring;
    const at = this.end % ring.length;
    const first = Math.min(frames.length, ring.length - at);
    ring.set(first === frames.length ? frames : frames.subarray(0, first), at);
    if (first < frames.length) ring.set(frames.subarray(first), 0);
  }

  private copyOut(c: Chunk): Buffer {
    const ring = this.ring!;
    const out = Buffer.allocUnsafe(c.length);
    const at = c.at % ring.length;
    const first = Math.min(c.length, ring.length - at);
    ring.copy(out, 0, at, at + first);
    if (first < c.length) ring.copy(out, first, 0, c.length - first);
    return out;
  }
}

/** The whole frames of `frames` that start at or after byte `from`. */
function tail(frames: Buffer, from: number): { frames: Buffer; count: number } {
  let start = frames.length;
  let count = 0;
  let frameStart = 0;
  forEachFrame(frames, (_msgStart, end) => {
    if (start === frames.length && frameStart >= from) start = frameStart;
    if (start !== frames.length) count++;
    frameStart = end;
  });
  return { frames: frames.subarray(start), count };
}
