import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes a whole file durably under `name`: temp file, fsync, rename, folder fsync; mode 0600 (chmod
 * too, for a temp file a crash left behind with another mode).
 */
export async function writeFileDurably(dir: string, name: string, data: Buffer | string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}
