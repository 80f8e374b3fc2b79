import { forEachFrame } from '../framing/octet.js';

interface Chunk {
  /** Octet-counted frames, whole ones only. */
  frames: Buffer;
  count: number;
}

/**
 * Plain TCP/TLS has no acknowledgement: a batch counts as handed on once the kernel took its bytes,
 * and a drain that dies takes with it what sat in both kernels' buffers (megabytes on a fast link).
 * The window keeps a copy of the last `maxBytes` of complete frames handed to a socket; after a
 * connection ends without auditfwd closing it, they are sent first on the next connection (to the
 * same drain or another pool member). A drain that crashed loses nothing its buffers held; one
 * that survived sees at most `maxBytes` again (deduplicable on the message content).
 *
 * Copies, never references: a handed-on batch's memory goes back to its writer's slabs. Bounded by
 * maxBytes, plus the newest chunk's excess until it is trimmed.
 */
export class ResendWindow {
  private chunks: Chunk[] = [];
  private bytes = 0;
  private pending = false;

  constructor(readonly maxBytes: number) {}

  /** `frames` (octet-counted, `count` of them) were handed to a socket. */
  record(frames: Buffer, count: number): void {
    if (this.maxBytes === 0 || frames.length === 0) return;
    const chunk = frames.length > this.maxBytes ? tail(frames, frames.length - this.maxBytes) : { frames, count };
    if (chunk.count === 0) return;
    this.chunks.push({ frames: Buffer.from(chunk.frames), count: chunk.count });
    this.bytes += chunk.frames.length;
    while (this.bytes > this.maxBytes) {
      const first = this.chunks[0];
      const excess = this.bytes - this.maxBytes;
      this.bytes -= first.frames.length;
      if (first.frames.length <= excess) {
        this.chunks.shift();
        continue;
      }
      const kept = tail(first.frames, excess);
      // A copy: a view would keep the whole old chunk alive.
      this.chunks[0] = { frames: Buffer.from(kept.frames), count: kept.count };
      this.bytes += kept.frames.length;
      if (kept.count === 0) this.chunks.shift();
    }
  }

  /** The connection ended without auditfwd closing it: what the window holds goes out again first. */
  lost(): void {
    if (this.bytes > 0) this.pending = true;
  }

  /** After a lost connection, the frames to send first (oldest first), once; else undefined. */
  takeReplay(): Chunk[] | undefined {
    if (!this.pending) return undefined;
    this.pending = false;
    return this.chunks.slice();
  }

  get heldBytes(): number {
    return this.bytes;
  }
}

/** The whole frames of `frames` that start at or after byte `from`. */
function tail(frames: Buffer, from: number): Chunk {
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
