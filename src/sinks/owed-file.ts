import { closeSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { wholeFrames } from '../framing/octet.js';

/** Its name in the buffer folder (the spill's, which takes only its own `.seg` files and cursor). */
export const OWED_FILE = 'resend-owed';

/**
 * What lost connections still owe (resend-window.ts), kept in a file in the buffer folder from the
 * loss until a new connection has taken it. The window itself is in memory or an unlinked file: a
 * `kill -9` of auditfwd after a drain died with unread messages in its buffers, and before the next
 * connection, lost them (their positions were committed when the socket took them; the soak found
 * it). The next run sends the file's messages first. Replaced whole (a new file renamed over it), so
 * a crash leaves the old content or the new, never half of one.
 */
export class OwedFile {
  constructor(
    readonly path: string,
    /** A write or read that failed: the window goes on in the process; only a crash now loses. */
    private readonly failed: (err: unknown) => void,
  ) {}

  /**
   * Keeps `chunks` (octet-counted frames, oldest first) in place of what was kept; none: removes the
   * file. Each chunk is written before the next is asked for, so that they can share one buffer.
   */
  write(chunks: Iterable<Buffer>): void {
    // Not `.tmp`: the spill removes those from the folder when it opens.
    const tmp = this.path + '.new';
    let fd: number | undefined;
    try {
      for (const chunk of chunks) {
        if (fd === undefined) {
          rmSync(tmp, { force: true });
          fd = openSync(tmp, 'wx', 0o600);
        }
        for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
      }
      if (fd === undefined) {
        removeIfThere(this.path);
        return;
      }
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, this.path);
    } catch (err) {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {}
      }
      try {
        rmSync(tmp, { force: true });
      } catch {}
      this.failed(err);
    }
  }

  /** What an earlier run kept: its whole frames (anything after the first that is not one is left out). */
  read(): { frames: Buffer; count: number } | undefined {
    let data: Buffer;
    try {
      data = readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.failed(err);
      return undefined;
    }
    const { end, count } = wholeFrames(data);
    return count > 0 ? { frames: data.subarray(0, end), count } : undefined;
  }
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
