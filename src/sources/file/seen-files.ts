import { basename } from 'node:path';
import { identifyWithHead, inodeKey, type FileIdentity } from '../../state/file-identity.js';
import { openRegular } from './open-regular.js';
import { beginsWith, headOf, isBackupOf, MIN_CONTENT_MATCH, siblings, startsLike, writtenOrder, type Sibling, type Unfinished } from './rotated.js';
import { gzipBackups, gzIdentity, isCopyOf, plainTwin, rotatedAt, type Known } from './gzip-backups.js';
import { inspectGzip } from './gzip-file.js';

/** What is next to a path at start: plain files with the identity they had then, and .gz backups. */
export interface Listed {
  plain: Array<Sibling & { id: FileIdentity }>;
  gz: Sibling[];
}

/** How many identities of files read are kept to tell a copy from a file rotated past us. */
const HEADS = 64;

/**
 * The files a tailer has met next to its path, to find those a writer rotated past it: a writer that
 * rotates twice between two looks at the path leaves the file in the middle under a backup name,
 * never seen at the path.
 */
export class SeenFiles {
  /**
   * Inodes met (next to the path at start, or opened), with the bytes the file there began with: a
   * backup on any other inode, or on one whose number was freed and given to a file that begins
   * otherwise (logrotate's next copy, made where the last .1 was), was rotated past us.
   */
  private readonly known = new Map<string, { fpLen: number; fp: string } | undefined>();
  /** Identities of files read: a new backup beginning like one of them is a copy, not skipped. */
  private heads: Known[] = [];
  /**
   * Identities of the plain backups there at start: read by an earlier run, by this one's resume, or
   * not ours; a .gz made of one later is no file rotated past us.
   */
  private atStart: Known[] = [];

  constructor(private readonly path: string) {}

  met(id: { dev: number; ino: number; fpLen?: number; fp?: string }): void {
    this.known.set(inodeKey(id), id.fpLen && id.fp !== undefined ? { fpLen: id.fpLen, fp: id.fp } : undefined);
  }

  /** Whether the file `s` is the one met on its inode (as far as the bytes it was met with tell). */
  private async isMet(s: Sibling): Promise<boolean> {
    const key = inodeKey(s.st);
    if (!this.known.has(key)) return false;
    const head = this.known.get(key);
    return !head || (head.fpLen <= s.st.size && (await beginsWith(s.path, head.fpLen, head.fp)));
  }

  /** A file read to `size`, its end. */
  read(id: FileIdentity, size: number): void {
    this.heads.push({ ...id, size });
    if (this.heads.length > HEADS) this.heads.shift();
  }

  /** Whether the file `s` was read by this run (the same inode, beginning with the same bytes). */
  async wasRead(s: Sibling): Promise<boolean> {
    for (const h of this.heads) if (h.ino === s.st.ino && h.dev === s.st.dev && (await beginsWith(s.path, h.fpLen, h.fp))) return true;
    return false;
  }

  /** What is next to the path now, plain and gzipped: listed before the resume plan looks. */
  static async list(path: string): Promise<Listed> {
    const plain: Listed['plain'] = [];
    for (const s of await siblings(path)) {
      // Its first bytes now: by the time it is met, the name (and the inode number) may be another file's.
      const fh = await openRegular(s.path).catch(() => undefined);
      if (!fh) continue;
      try {
        const { id } = await identifyWithHead(fh);
        if (id.ino === s.st.ino && id.dev === s.st.dev) plain.push({ ...s, id });
      } finally {
        await fh.close();
      }
    }
    return { plain, gz: await gzipBackups(path) };
  }

  /**
   * Every file next to the path when `listed` was taken is met (those already there are not rotated
   * past us), except those renamed or written at or after `since`: they were the live file then.
   */
  async meetSiblings(listed: Listed, since = Infinity): Promise<void> {
    const before = (s: Sibling) => Math.max(s.st.ctimeMs, s.st.mtimeMs) < since;
    for (const s of listed.plain.filter(before)) {
      this.met(s.id);
      this.atStart.push({ ...s.id, size: s.st.size });
    }
    for (const s of listed.gz.filter(before)) this.met(s.st);
  }

  /**
   * Backups of the path on inodes not met, that do not begin with the bytes of a file read (`open`:
   * those being read too), to be read from their start, oldest first. Each is met from now on.
   */
  async rotatedPast(open: Known[], live?: { dev: number; ino: number; head: Buffer }): Promise<Unfinished[]> {
    const base = basename(this.path);
    const heads = [...this.heads, ...open].filter((h) => h.fpLen >= MIN_CONTENT_MATCH);
    const out: Unfinished[] = [];
    for (const s of await siblings(this.path)) {
      // A file being read is met, whatever it begins with now (copytruncate emptied it since).
      if (open.some((o) => o.ino === s.st.ino && o.dev === s.st.dev) || (await this.isMet(s))) continue;
      // Met with its first bytes: logrotate's next copy, made on this inode once it is freed, is not.
      const head = await headOf(s.path, s.st);
      this.met({ ...s.st, ...head });
      if (!isBackupOf(base, basename(s.path))) continue;
      // The file just opened at the path, renamed since (the writer rotated between that open and
      // this look): rotated past us like the others, and no copy of itself. Taken for its copy, it
      // was met and never read: the file after it was opened next (8,000 lines lost under load).
      const renamedLive = live !== undefined && s.st.ino === live.ino && s.st.dev === live.dev;
      let copy = false;
      for (const h of heads) if (!copy && !renamedLive && h.fpLen <= s.st.size && (await beginsWith(s.path, h.fpLen, h.fp))) copy = true;
      // Beginning like `live` (the first bytes of the file at the path, about to be opened): its
      // copytruncate copy, maybe still being written; read from the file itself, not as a backup.
      // Not when it begins with a NUL hole: every file copytruncated under lumberjack begins alike.
      if (!copy && !renamedLive && live && live.head.length > 0 && live.head[0] !== 0) copy = await startsLike(s.path, live.head);
      if (!copy) out.push({ path: s.path, offset: 0, mtimeMs: s.st.mtimeMs, size: s.st.size, dev: s.st.dev, ino: s.st.ino, ...head });
    }
    out.push(...(await this.gzippedPast([...heads, ...this.atStart.filter((h) => h.fpLen >= MIN_CONTENT_MATCH)])));
    return out.sort(writtenOrder);
  }

  /**
   * A writer that rotates and compresses while we are behind (lumberjack --audit-log-compress) can
   * leave a file we never saw only as a .gz: one beginning with the bytes of no file read (nor open,
   * nor still there as a plain file) is read whole, once complete.
   */
  private async gzippedPast(heads: Known[]): Promise<Unfinished[]> {
    const out: Unfinished[] = [];
    const plains = await siblings(this.path);
    for (const g of await gzipBackups(this.path)) {
      if (this.known.has(inodeKey(g.st))) continue;
      const info = await inspectGzip(g.path, true);
      // Not even its first bytes yet: looked at again next time.
      if (!info || info.head.length < Math.min(MIN_CONTENT_MATCH, info.length) || info.head.length === 0) continue;
      this.met(g.st);
      let copy = false;
      for (const h of heads) if (!copy && (await isCopyOf(g, info.head, h))) copy = true;
      if (copy || (await plainTwin(plains, info.head))) continue;
      out.push({ path: g.path, offset: 0, mtimeMs: rotatedAt(g), gz: true, gzId: gzIdentity(g, info.head) });
    }
    return out;
  }
}
