import { forEachFrame } from '../framing/octet.js';

interface Chunk {
  /** Octet-counted frames, whole ones only. */
  frames: Buffer;
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
 * Copies, never references: a handed-on batch's memory goes back to its writer's slabs. Bounded by
 * maxBytes, plus the newest chunk's excess until it is trimmed.
 */
export class ResendWindow {
  private chunks: Chunk[] = [];
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** `frames` (octet-counted, `count` of them) were handed to the socket of `carrier`. */
  record(frames: Buffer, count: number, carrier?: object): void {
    if (this.maxBytes === 0 || frames.length === 0) return;
    const chunk = frames.length > this.maxBytes ? tail(frames, frames.length - this.maxBytes) : { frames, count };
    if (chunk.count === 0) return;
    this.chunks.push({ frames: Buffer.from(chunk.frames), count: chunk.count, carrier });
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
      this.chunks[0] = { ...first, frames: Buffer.from(kept.frames), count: kept.count };
      this.bytes += kept.frames.length;
      if (kept.count === 0) this.chunks.shift();
    }
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
    return out.map(({ frames, count }) => ({ frames, count }));
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
