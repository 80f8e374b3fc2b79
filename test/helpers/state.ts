import { once } from 'node:events';
import { readFileSync, watch } from 'node:fs';
import { join } from 'node:path';

/** The highest offset in a state folder's checkpoints.json once it reaches `min`; woken by the folder's rename events. */
export async function savedOffset(stateDir: string, min: number): Promise<number> {
  const read = () => {
    try {
      return (JSON.parse(readFileSync(join(stateDir, 'checkpoints.json'), 'utf8')).files as Array<{ offset: number }>).reduce((a, f) => Math.max(a, f.offset), 0);
    } catch {
      return -1;
    }
  };
  const w = watch(stateDir);
  try {
    for (;;) {
      const o = read();
      if (o >= min) return o;
      await once(w, 'change');
    }
  } finally {
    w.close();
  }
}
