import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import type { Stats as FsStats } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Checkpoint } from '../../state/checkpoints.js';
import { fingerprint, identifyWithHead, isHoleFingerprint, MIN_CONTENT_MATCH, resumable } from '../../state/file-identity.js';

/** Compressed backups cannot be read as text; they are never a continuation. */
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|zip|Z)$/;
/** lumberjack (kube-apiserver): audit-2026-11-22T10-00-00.000.log */
const LUMBERJACK = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(\.\d+)?(\.[^.]*)?$/;
/** logrotate: audit.log.1, audit.log-20261122, audit.log-2026112210 */
const LOGROTATE = /(\.\d+|-\d{8}(\d{2})?)$/;

/** Whether a name looks like a rotated backup; a glob does not follow these as files of their own. */
export function looksRotated(name: string): boolean {
  return COMPRESSED.test(name) || LUMBERJACK.test(name) || LOGROTATE.test(name);
}

/** Whether `name` is a backup of `base` as kube-apiserver or logrotate names them. */
export function isBackupOf(base: string, name: string): boolean {
  if (name === base || COMPRESSED.test(name)) return false;
  const ext = extname(base);
  const stem = base.slice(0, base.length - ext.length);
  if (name.startsWith(stem + '-') && name.endsWith(ext) && LUMBERJACK.test(name)) return true;
  return name.startsWith(base) && LOGROTATE.test(name.slice(base.length)) && /^[-.]/.test(name.slice(base.length));
}

export interface Sibling {
  path: string;
  st: FsStats;
}

/**
 * Files next to `path` whose names share its stem: where a rotated copy of it can be. Broader than
 * `isBackupOf` on purpose; callers match content (identity, fingerprint), not names.
 */
export async function siblings(path: string): Promise<Sibling[]> {
  const base = basename(path);
  const stem = base.slice(0, base.length - extname(base).length) || base;
  return filesNextTo(path, (name) => name !== base && name.startsWith(stem) && !COMPRESSED.test(name));
}

/** Regular files in the folder of `path` whose names `accept` takes. */
export async function filesNextTo(path: string, accept: (name: string) => boolean): Promise<Sibling[]> {
  const dir = dirname(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: Sibling[] = [];
  for (const name of names) {
    if (!accept(name)) continue;
    const p = join(dir, name);
    const st = await stat(p).catch(() => undefined);
    if (st?.isFile()) out.push({ path: p, st });
  }
  return out;
}

/**
 * The first bytes of the file at `path`, as a fingerprint; undefined when it cannot be opened, or
 * when the name no longer holds the file `at` (its device and inode) that was listed there: logrotate
 * shifting `.2` to `.3` between the listing and this read would otherwise pair one file's inode with
 * another's bytes, and the file then counts as gone when it is opened (reported as deleted unread).
 */
export async function headOf(path: string, at?: { dev: number; ino: number }): Promise<{ fpLen: number; fp: string } | undefined> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const { id } = await identifyWithHead(fh);
    if (at && (id.ino !== at.ino || id.dev !== at.dev)) return undefined;
    return { fpLen: id.fpLen, fp: id.fp };
  } finally {
    await fh.close();
  }
}

/**
 * Whether the file at `path` begins like `head` (another file's first bytes), over as many bytes as
 * it has, at least MIN_CONTENT_MATCH: a copy still being written matches before it is complete.
 */
export async function startsLike(path: string, head: Buffer): Promise<boolean> {
  if (head.length < MIN_CONTENT_MATCH) return false;
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const buf = Buffer.alloc(head.length);
    const { bytesRead } = await fh.read(buf, 0, head.length, 0);
    return bytesRead >= MIN_CONTENT_MATCH && buf.subarray(0, bytesRead).equals(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** Whether the file at `path` begins with the bytes a checkpoint was fingerprinted on. */
export async function beginsWith(path: string, fpLen: number, fp: string): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    return (await fingerprint(fh, fpLen)) === fp;
  } finally {
    await fh.close();
  }
}

/** Whether the file at `path` (of `size` bytes) is the one a checkpoint knows, and its offset holds there (resumable). */
async function holds(path: string, c: Checkpoint, size: number): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    return await resumable(fh, c, size);
  } finally {
    await fh.close();
  }
}

/**
 * Opens the file found as `u`: at its path, or, when the name is another file's now, under the name
 * it was renamed to (logrotate's .1 shifted to .2); undefined when it is not there as a plain file.
 */
export async function openFound(path: string, u: Unfinished, open: (p: string) => Promise<FileHandle>): Promise<{ fh: FileHandle; path: string } | undefined> {
  const at = [u.path, ...(await siblings(path)).filter((s) => s.path !== u.path && s.st.ino === u.ino && s.st.dev === u.dev).map((s) => s.path)];
  for (const p of at) {
    const fh = await open(p).catch(() => undefined);
    if (!fh) continue;
    if (await stillFound(fh, u).catch(() => false)) return { fh, path: p };
    await fh.close();
  }
  return undefined;
}

/**
 * File times come from the kernel's coarse clock (one tick, up to 10 ms, behind Date.now()), and a
 * rotation can follow our last commit by less than that: "after our last commit" allows this much.
 * A backup this close before our last commit that we had not read is still unread, so it is safe.
 */
const FS_CLOCK_SLACK_MS = 1000;

/** Files changed after this were made after our last commit (a backup made while we were away). */
export function madeSince(mine: Checkpoint[]): number {
  return Math.max(...mine.map((c) => c.updatedAt)) - FS_CLOCK_SLACK_MS;
}

export { MIN_CONTENT_MATCH };

/**
 * Unfinished files in the order they were written: by mtime, and at equal mtimes the one partly read
 * first. File times are coarse (a jiffy or more), so logrotate's copy and lumberjack's rename of the
 * file it wrote a few lines to right after can carry the same one; files are read oldest first, so a
 * file we had started is older than one we had not (the soak, seed 45043: the renamed file's lines
 * went ahead of the copy's unread ones, listed first by the folder).
 */
export function writtenOrder(a: Unfinished, b: Unfinished): number {
  return a.mtimeMs - b.mtimeMs || Number(b.offset > 0) - Number(a.offset > 0) || backupNumber(b.path) - backupNumber(a.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/**
 * logrotate's number of a backup (audit.log.3, audit.log.3.gz: 3; other names 0). Two backups written
 * within one tick of the file clock (a writer rotating twice between two looks) are otherwise told
 * apart by their names: the higher number is the older, and lumberjack's timestamped names sort as
 * they were made.
 */
function backupNumber(path: string): number {
  const m = /\.(\d+)(\.gz)?$/.exec(path);
  return m ? Number(m[1]) : 0;
}

export interface Unfinished {
  path: string;
  offset: number;
  mtimeMs: number;
  /** Size when found: at or below `offset`, the file is ours and already read to its end. */
  size?: number;
  /** A gzip backup: read from its decompressed stream, once complete. */
  gz?: boolean;
  /** Its identity (the .gz's inode, its decompressed first bytes): saved when planned, so a later run knows it. */
  gzId?: { dev: number; ino: number; fpLen: number; fp: string };
  /** The hash of the bytes before `offset` its checkpoint kept. */
  tail?: string;
  /** What the file was known by (its checkpoint): a .gz made of it is found by these bytes. */
  fpLen?: number;
  fp?: string;
  /** The inode it was found on: a numbered name (audit.log.1) is another file's after the next rotation. */
  dev?: number;
  ino?: number;
}

/**
 * Whether the file open as `fh` is still the one `u` was found as (its inode, the bytes it was known
 * by): the name may be another file's by the time it is opened or recorded (logrotate shifting .1 to
 * .2.gz and copying a new .1, perhaps onto the inode number just freed).
 */
export async function stillFound(fh: FileHandle, u: Unfinished): Promise<boolean> {
  const st = await fh.stat();
  if (u.ino !== undefined && (st.ino !== u.ino || st.dev !== u.dev)) return false;
  if (!u.fpLen || u.fp === undefined) return true;
  return u.fpLen <= st.size && (await fingerprint(fh, u.fpLen)) === u.fp;
}

/**
 * Where the lines of `path` that were not yet handed on can be after a restart: a file we had
 * checkpointed, now under a rotated name (same device and inode), with data past its saved offset; a
 * copytruncate copy (another inode beginning with the bytes of a file we had not finished); and, when
 * the live file is not the one we knew, backups that appeared after our last commit. Oldest first.
 */
export async function findUnfinished(path: string, mine: Checkpoint[], live: { dev: number; ino: number; knownFp: boolean } | undefined, retired: Checkpoint[] = []): Promise<Unfinished[]> {
  if (mine.length === 0) return [];
  const since = madeSince(mine);
  const base = basename(path);
  const isLive = (c: Checkpoint) => live !== undefined && live.knownFp && live.dev === c.dev && live.ino === c.ino;
  const found: Unfinished[] = [];
  const all = await siblings(path);
  // A checkpoint whose file is still here (same inode, same first bytes) accounts for that file; its few first
  // bytes must not be matched against other backups (audit lines all begin alike).
  const here = new Set<string>();
  for (const s of all) {
    const c = mine.find((m) => m.dev === s.st.dev && m.ino === s.st.ino);
    if (c && (await holds(s.path, c, s.st.size))) here.add(`${c.dev}:${c.ino}`);
  }
  for (const s of all) {
    let offset: number | undefined;
    let known: Checkpoint | undefined;
    const own = mine.find((c) => c.dev === s.st.dev && c.ino === s.st.ino);
    if (own && (await holds(s.path, own, s.st.size))) {
      offset = own.offset;
      known = own;
    } else {
      // A rename changes ctime, not mtime: a backup made while we were away has a ctime past our last commit.
      const newBackup = !live?.knownFp && Math.max(s.st.mtimeMs, s.st.ctimeMs) > since && isBackupOf(base, basename(s.path));
      // The longest fingerprint first: a short one (a few bytes of an unterminated line) can match by chance.
      // Retired files too (what a truncated live file was before): their inode numbers mean nothing now.
      const cands = [...mine.filter((c) => !isLive(c) && !here.has(`${c.dev}:${c.ino}`)), ...retired];
      for (const c of cands.sort((x, y) => y.fpLen - x.fpLen)) {
        if (c.fpLen === 0 || c.fpLen > s.st.size) continue;
        // A short fingerprint is weak evidence alone; a name and a time that say "backup" make it enough.
        if (c.fpLen < MIN_CONTENT_MATCH && !newBackup) continue;
        // Files beginning with a hole all begin alike: such a checkpoint names its file by its inode only.
        if (isHoleFingerprint(c)) continue;
        if (await holds(s.path, c, s.st.size)) {
          offset = c.offset;
          known = c;
          break;
        }
      }
      if (offset === undefined && newBackup) offset = 0;
    }
    // Known by no checkpoint: by its own first bytes, so that the name holding another file later
    // (logrotate's next .1, perhaps on this inode number) is seen.
    const by = known ?? (offset !== undefined ? await headOf(s.path, s.st) : undefined);
    if (offset !== undefined) found.push({ path: s.path, offset, mtimeMs: s.st.mtimeMs, size: s.st.size, fpLen: by?.fpLen, fp: by?.fp, dev: s.st.dev, ino: s.st.ino });
  }
  return found.sort(writtenOrder);
}

/** For copytruncate: the copy of a file we were reading, if it is next to it and longer than what we read. */
export async function findCopy(path: string, id: { dev: number; ino: number; fpLen: number; fp: string }, readPos: number): Promise<Sibling | undefined> {
  if (id.fpLen === 0) return undefined;
  // The newest match: an older backup may begin with the same few bytes as a short file.
  const candidates = (await siblings(path)).sort((a, b) => b.st.mtimeMs - a.st.mtimeMs);
  for (const s of candidates) {
    if (s.st.ino === id.ino && s.st.dev === id.dev) continue;
    if (s.st.size < readPos) continue;
    if (await beginsWith(s.path, id.fpLen, id.fp)) return s;
  }
  return undefined;
}

/**
 * copytruncate while we were stopped: the live file is still the inode we knew, but a backup of it
 * appeared after our last commit (a new inode, named as a backup, beginning with the bytes we knew,
 * longer than our offset). A rename keeps the inode, so a new backup next to an unchanged live inode
 * is a copy: its unread part is finished from our offset, and the live file is read from its start.
 * (logrotate's `copy` without truncate looks the same and is read as copytruncate: duplicates, not loss.)
 */
export async function findCopiesMadeWhileAway(path: string, live: Checkpoint, mine: Checkpoint[]): Promise<Unfinished[]> {
  const since = madeSince(mine);
  const base = basename(path);
  const fresh = (await siblings(path))
    .filter((s) => !mine.some((c) => c.dev === s.st.dev && c.ino === s.st.ino))
    .filter((s) => Math.max(s.st.mtimeMs, s.st.ctimeMs) > since && isBackupOf(base, basename(s.path)))
    .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
  // The oldest fresh backup beginning with our bytes holds our unread rest; any newer one was copied
  // from what the file got after that truncation (copytruncate more than once while we were away).
  for (let i = 0; i < fresh.length; i++) {
    const s = fresh[i];
    if (s.st.size <= live.offset || s.st.size < live.fpLen || !(await beginsWith(s.path, live.fpLen, live.fp))) continue;
    return [{ path: s.path, offset: live.offset, mtimeMs: s.st.mtimeMs, size: s.st.size, fpLen: live.fpLen, fp: live.fp, dev: s.st.dev, ino: s.st.ino }, ...fresh.slice(i + 1).map((n) => ({ path: n.path, offset: 0, mtimeMs: n.st.mtimeMs, size: n.st.size, dev: n.st.dev, ino: n.st.ino }))];
  }
  return [];
}
