import { openRegular } from './open-regular.js';
import type { Logger } from '../../telemetry/log.js';
import type { Checkpoint, CheckpointStore } from '../../state/checkpoints.js';
import { identifyWithHead, inodeKey, resumable, type FileIdentity } from '../../state/file-identity.js';
import { beginsWith, findCopiesMadeWhileAway, findUnfinished, siblings, stillFound, writtenOrder, type Sibling, type Unfinished } from './rotated.js';
import { findGzipUnfinished, headMatches } from './gzip-backups.js';

export interface ResumePlan {
  /** We followed this path in an earlier run: a file there we do not know is new, read from its start. */
  hasHistory: boolean;
  /** Rotated files with unread lines: read, oldest first, before the live file. */
  backlog: Unfinished[];
  /** The live file's inode whose saved offset belongs to content that was copied away (copytruncate). */
  truncatedWhileAway?: string;
  /** Files of ours gone with bytes not read, and no .gz of them: what was lost, to be reported. */
  lost: Checkpoint[];
}

/** Before the first open of `path`: what an earlier run left unread, from its checkpoints. */
export async function planResume(path: string, store: CheckpointStore, log: Logger): Promise<ResumePlan> {
  const mine = store.all().filter((c) => c.path === path);
  if (mine.length === 0) return { hasHistory: false, backlog: [], lost: [] };
  let live: { dev: number; ino: number; knownFp: boolean } | undefined;
  let liveCp: Checkpoint | undefined;
  /** The live file when it is new to us: remembered from its start with the backlog (see below). */
  let newLive: FileIdentity | undefined;
  const fh = await openRegular(path).catch(() => undefined);
  if (fh) {
    try {
      const st = await fh.stat();
      const cp = mine.find((c) => c.dev === st.dev && c.ino === st.ino);
      const knownFp = cp !== undefined && (await resumable(fh, cp, st.size));
      live = { dev: st.dev, ino: st.ino, knownFp };
      if (knownFp) liveCp = cp;
      // New to us also on an inode number a file we knew had (reused).
      if (!knownFp) newLive = (await identifyWithHead(fh)).id;
    } finally {
      await fh.close();
    }
  }
  const found = await findUnfinished(path, mine, live, store.retired(path));
  const backlog = found.filter((u) => u.size === undefined || u.size > u.offset);
  const gz = await findGzipUnfinished(path, mine, store.retired(path), live);
  backlog.push(...gz.unfinished);
  // Known as ours from now on, by its own inode: a run stopped before reading it still finds it
  // (a backup new to us now is no longer "made after our last commit" then).
  // Recorded at the time of the last position read, as everything the plan records: a run stopped
  // before reading on must still take backups made since then for ones it has not seen.
  const horizon = Math.max(...mine.map((c) => c.updatedAt));
  for (const u of gz.unfinished) if (u.gzId) store.commit(path, u.gzId, u.offset, undefined, u.tail, horizon);
  backlog.sort(writtenOrder);
  // Gone: no file on its inode begins with its bytes any more (the number may be another file's now),
  // and no backup, plain or gzipped, was found to hold it.
  const present = new Set<string>();
  for (const s of await siblings(path)) {
    const c = mine.find((m) => m.dev === s.st.dev && m.ino === s.st.ino);
    if (c && c.fpLen <= s.st.size && (await beginsWith(s.path, c.fpLen, c.fp))) present.add(inodeKey(c));
  }
  if (live?.knownFp) present.add(inodeKey(live));
  const plains = await siblings(path);
  const inBackup = async (c: Checkpoint) =>
    found.some((u) => u.fpLen === c.fpLen && u.fp === c.fp) ||
    gz.accounted.has(inodeKey(c)) ||
    gz.heads.some((h) => headMatches(h, c)) ||
    (c.fpLen > 0 && (await anyBeginsWith(plains, c)));
  const lost: Checkpoint[] = [];
  for (const c of mine) if (!present.has(inodeKey(c)) && (c.size ?? c.offset) > c.offset && !(await inBackup(c))) lost.push(c);
  // Backups of ours read to their end are recorded as ours, or the next run, seeing a backup
  // newer than its last commit, could take one for a copy it has not read.
  for (const u of found) if (u.size !== undefined && u.size <= u.offset) await recordRead(path, store, u, horizon);
  let truncatedWhileAway: string | undefined;
  const copies = liveCp ? await findCopiesMadeWhileAway(path, liveCp, mine) : [];
  if (liveCp && copies.length > 0) {
    for (const c of copies) if (!backlog.some((u) => u.path === c.path)) backlog.push(c);
    backlog.sort(writtenOrder);
    truncatedWhileAway = inodeKey(liveCp);
    log.info({ file: path, copies: copies.map((c) => c.path), offset: liveCp.offset }, 'file was copytruncated while stopped; finishing its copies, then reading it from the start');
  }
  if (backlog.length > 0) log.info({ file: path, rotated: backlog.map((u) => u.path) }, 'finishing rotated files first');
  // The live file new to us too: a run stopped while still reading the backlog (a crash loop) must
  // find it again when it has been rotated and compressed meanwhile, by its inode or its first bytes;
  // its time is no evidence, as the commits of that backlog are later.
  await rememberBacklog(path, store, backlog, horizon, newLive).catch((err) => log.error({ file: path, err: String(err) }, 'saving checkpoints failed'));
  return { hasHistory: true, backlog, truncatedWhileAway, lost };
}

/** Whether a file next to the path begins with the bytes a checkpoint knows (a backup of it, under another inode). */
async function anyBeginsWith(plains: Sibling[], c: Checkpoint): Promise<boolean> {
  for (const p of plains) if (c.fpLen <= p.st.size && (await beginsWith(p.path, c.fpLen, c.fp))) return true;
  return false;
}

/**
 * The backlog on disk before any of it is read: a run stopped while catching up (a crash loop) must
 * find it again, and by their times alone, backups older than that run's own commits look read.
 */
async function rememberBacklog(path: string, store: CheckpointStore, backlog: Unfinished[], at: number, live?: FileIdentity): Promise<void> {
  const files = live ? [{ id: live, offset: 0 }] : [];
  // A .gz planned is committed under its own identity above.
  for (const u of backlog.filter((x) => !x.gz)) {
    const id = await identityAt(u);
    if (id) files.push({ id, offset: u.offset });
  }
  await store.remember(path, files, false, at);
}

async function recordRead(path: string, store: CheckpointStore, u: Unfinished, at: number): Promise<void> {
  const id = await identityAt(u);
  if (id) store.commit(path, id, u.size ?? u.offset, undefined, undefined, at);
}

/**
 * The identity of the file found as `u`, at its path now; undefined when it is gone (deleted since it
 * was listed) or the name is another file's now: that one must not inherit `u`'s offset.
 */
async function identityAt(u: Unfinished): Promise<FileIdentity | undefined> {
  const fh = await openRegular(u.path).catch(() => undefined);
  if (!fh) return undefined;
  try {
    return (await stillFound(fh, u)) ? (await identifyWithHead(fh)).id : undefined;
  } finally {
    await fh.close();
  }
}
