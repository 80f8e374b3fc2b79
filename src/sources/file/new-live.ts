import { stat } from 'node:fs/promises';
import type { CheckpointStore } from '../../state/checkpoints.js';
import { FINGERPRINT_BYTES, identifyWithHead, MIN_CONTENT_MATCH } from '../../state/file-identity.js';
import { openRegular } from './open-regular.js';

/**
 * While rotated files are read (catching up after a restart), the path itself is not open, and a
 * new file there (lumberjack's next) would be known to nobody until the catch-up ends. A copytruncate
 * copy of it made before a kill -9 then looked, to the next run, like an old backup: newer than
 * nothing it knew by content, older than the catch-up's last commit, so skipped, its lines lost.
 * Recorded here from its start, by inode and first bytes, such a copy is known by those bytes.
 */
export class NewLiveFiles {
  /** The file last recorded, and by how many bytes: nothing new to say while they stay the same. */
  private last = '';

  constructor(
    private readonly path: string,
    private readonly store: CheckpointStore,
  ) {}

  async check(): Promise<void> {
    const st = await stat(this.path).catch(() => undefined);
    // Too few bytes to know a copy by: looked at again at the next read.
    if (!st?.isFile() || st.size < MIN_CONTENT_MATCH) return;
    const key = `${st.dev}:${st.ino}:${Math.min(st.size, FINGERPRINT_BYTES)}`;
    if (key === this.last) return;
    const known = this.store.get(st);
    if (known && known.fpLen >= Math.min(st.size, FINGERPRINT_BYTES)) {
      this.last = key;
      return;
    }
    const fh = await openRegular(this.path).catch(() => undefined);
    if (!fh) return;
    try {
      const { id } = await identifyWithHead(fh);
      await this.store.remember(this.path, [{ id, offset: 0 }], false);
      this.last = `${id.dev}:${id.ino}:${id.fpLen}`;
    } finally {
      await fh.close();
    }
  }
}
