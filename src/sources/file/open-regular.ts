import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** What sits at a followed path instead of a regular file. */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG';
  constructor(
    readonly path: string,
    readonly kind: string,
  ) {
    super(`${path} is a ${kind}, not a regular file`);
  }
}

/**
 * Opens a file to read with positions and offsets; anything else is refused. O_NONBLOCK: opening a
 * FIFO with no writer would otherwise block (a thread of libuv's pool, for ever); on a regular file
 * it changes nothing.
 */
export async function openRegular(path: string): Promise<FileHandle> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (st.isFile()) return fh;
    const kind = st.isFIFO() ? 'FIFO' : st.isDirectory() ? 'directory' : st.isSocket() ? 'socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'special file';
    throw new NotRegularFileError(path, kind);
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}
