import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Replaces `name` in `dir` by `data` without fsync: temp file, then rename. A kill -9 cannot leave it
 * half-written (the page cache outlives the process); only a power loss can, which the durable save
 * on the interval covers. Mode 0600; the temp file is never followed through a symlink.
 */
export async function writeFileQuickly(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `${name}.quick.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
}
