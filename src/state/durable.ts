import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Create a new file, never through a link someone planted at its name. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a whole file durably under `name`: temp file, fsync, rename, folder fsync; mode 0600.
 * auditfwd usually runs as root: a temp name left behind (by a crash, or planted as a symlink to
 * another file) is removed, never opened, and the temp file is created exclusively, so a link
 * planted between the two makes the write fail instead of overwriting the link's target.
 */
export async function writeFileDurably(dir: string, name: string, data: Buffer | string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  await rm(tmp, { force: true });
  const fh = await open(tmp, CREATE_NEW, 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  // rename replaces a link at `name` itself, never the file it points to.
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}
