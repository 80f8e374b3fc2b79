import { rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A file in the state folder while a process uses it, removed when it stops cleanly: found at start,
 * the last run did not stop (kill -9, the OOM killer, a power loss), and this one may be in a crash
 * loop. Not a lock: a marker another run left is taken over.
 */
const FILE = 'running';

/** Marks the folder as in use; true when the marker was there already (the last run died). */
export async function markRunning(dir: string): Promise<boolean> {
  try {
    const fh = await open(join(dir, FILE), 'wx', 0o600);
    await fh.writeFile(`${process.pid}\n`).finally(() => fh.close());
    return false;
  } catch (err) {
    // Another failure (a read-only folder, checked elsewhere) only means nothing is known.
    return (err as NodeJS.ErrnoException).code === 'EEXIST';
  }
}

export function markStopped(dir: string): void {
  rmSync(join(dir, FILE), { force: true });
}
