import { basename } from 'node:path';
import { inodeKey, type FileIdentity } from '../../state/file-identity.js';
import { beginsWith, isBackupOf, MIN_CONTENT_MATCH, siblings, type Sibling, type Unfinished } from './rotated.js';

/** How many identities of files read are kept to tell a copy from a file rotated past us. */
const HEADS = 64;

/**
 * The files a tailer has met next to its path, to find those a writer rotated past it: a writer that
 * rotates twice between two looks at the path leaves the file in the middle under a backup name,
 * never seen at the path.
 */
export class SeenFiles {
  /** Inodes met (next to the path at start, or opened): a backup on any other was rotated past us. */
  private readonly known = new Set<string>();
  /** Identities of files read: a new backup beginning like one of them is a copy, not skipped. */
  private heads: FileIdentity[] = [];

  constructor(private readonly path: string) {}

  met(id: { dev: number; ino: number }): void {
    this.known.add(inodeKey(id));
  }

  read(id: FileIdentity): void {
    this.heads.push(id);
    if (this.heads.length > HEADS) this.heads.shift();
  }

  /**
   * Every file next to the path when `listed` was taken is met (those already there are not rotated
   * past us), except those renamed or written at or after `since`: they were the live file then.
   */
  meetSiblings(listed: Sibling[], since = Infinity): void {
    for (const s of listed) if (Math.max(s.st.ctimeMs, s.st.mtimeMs) < since) this.met(s.st);
  }

  /**
   * Backups of the path on inodes not met, that do not begin with the bytes of a file read (`open`:
   * those being read too), to be read from their start, oldest first. Each is met from now on.
   */
  async rotatedPast(open: FileIdentity[]): Promise<Unfinished[]> {
    const base = basename(this.path);
    const heads = [...this.heads, ...open].filter((h) => h.fpLen >= MIN_CONTENT_MATCH);
    const out: Unfinished[] = [];
    for (const s of await siblings(this.path)) {
      if (this.known.has(inodeKey(s.st))) continue;
      this.met(s.st);
      if (!isBackupOf(base, basename(s.path))) continue;
      let copy = false;
      for (const h of heads) if (!copy && h.fpLen <= s.st.size && (await beginsWith(s.path, h.fpLen, h.fp))) copy = true;
      if (!copy) out.push({ path: s.path, offset: 0, mtimeMs: s.st.mtimeMs, size: s.st.size });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs);
  }
}
