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
 * auditfwd usually runs as root: a temp name left behind (by a crash, or planted as a link to
 * another file) is removed, never opened, and the temp file is created exclusively, so a link
 * planted between the two makes the write fail instead of overwriting the link's target.
 */
export function writeFileDurably(dir: string, name: string, data: Buffer | string): Promise<void> {
  return replaceFile(dir, name, `${name}.tmp`, data, true);
}

/**
 * The same without fsync: a kill -9 cannot leave it half-written (the page cache outlives the
 * process); only a power loss can, which the durable save on the interval covers. Its own temp name,
 * so a quick and a durable write of the same file never share one.
 */
export function writeFileQuickly(dir: string, name: string, data: Buffer | string): Promise<void> {
  return replaceFile(dir, name, `${name}.quick.tmp`, data, false);
}

async function replaceFile(dir: string, name: string, tmpName: string, data: Buffer | string, durable: boolean): Promise<void> {
  const tmp = join(dir, tmpName);
  await rm(tmp, { force: true });
  const fh = await open(tmp, CREATE_NEW, 0o600);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  // rename replaces a link at `name` itself, never the file it points to.
  await rename(tmp, join(dir, name));
  if (durable) await syncDir(dir);
}
