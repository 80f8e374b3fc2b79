import type { Chunk, ResendWindow } from '../../src/sinks/resend-window.js';

/** A replay's chunks, all of them read (undefined: nothing to replay). */
export function taken(w: ResendWindow, carrier?: object): Chunk[] | undefined {
  const r = w.takeReplay(carrier);
  if (!r) return undefined;
  const out: Chunk[] = [];
  // Copied: a chunk's memory is the replay's next one.
  for (let c = r.next(); c; c = r.next()) out.push({ frames: Buffer.from(c.frames), count: c.count });
  return out;
}
