import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Checkpoint } from '../../state/checkpoints.js';
import { fingerprintOf, inodeKey, isHoleFingerprint, offsetHolds, type FileIdentity } from '../../state/file-identity.js';
import { GzipFile, inspectGzip } from './gzip-file.js';
import { TAIL_BYTES } from './reader.js';
import { beginsWith, filesNextTo, isBackupOf, madeSince, MIN_CONTENT_MATCH, siblings, type Sibling, type Unfinished } from './rotated.js';

/**
 * Gzipped backups of `path`, oldest first: lumberjack's `audit-<time>.log.gz` (--audit-log-compress)
 * and logrotate's `audit.log.1.gz`. A copy of a backup (`audit-<time>.log.1.gz`) is not one: it
 * holds what the backup itself held.
 */
export async function gzipBackups(path: string): Promise<Sibling[]> {
  const base = basename(path);
  const out = await filesNextTo(path, (name) => name.endsWith('.gz') && isBackupOf(base, name.slice(0, -3)));
  return out.sort((a, b) => rotatedAt(a) - rotatedAt(b));
}

const LUMBERJACK_TIME = /-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})(?:\.(\d{1,3}))?\.[^.]*\.gz$/;

/**
 * When a .gz's content ended, to order it among backups: lumberjack gives the .gz the time it was
 * compressed (after a copytruncate copy made meanwhile), but names it after the rotation, in UTC (as
 * kube-apiserver runs it): the earlier of the two. logrotate keeps the original's time on its .gz.
 */
export function rotatedAt(g: Sibling): number {
  const m = LUMBERJACK_TIME.exec(basename(g.path));
  const named = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +(m[7] ?? '0').padEnd(3, '0')) : NaN;
  return Number.isFinite(named) ? Math.min(named, g.st.mtimeMs) : g.st.mtimeMs;
}

/** Whether decompressed first bytes `head` begin with the bytes a checkpoint was fingerprinted on. */
export function headMatches(head: Buffer, c: { fpLen: number; fp: string }): boolean {
  return c.fpLen > 0 && c.fpLen <= head.length && fingerprintOf(head.subarray(0, c.fpLen)) === c.fp;
}

/** Whether a plain file next to `path` begins with `head`: the .gz's original is still there, and read as itself. */
export async function plainTwin(plains: Sibling[], head: Buffer): Promise<boolean> {
  const fp = fingerprintOf(head);
  for (const p of plains) if (p.st.size >= head.length && (await beginsWith(p.path, head.length, fp))) return true;
  return false;
}

/** The length (mod 2^32) the last member's trailer declares: for a one-member .gz, its decompressed length. */
async function trailerLength(path: string, size: number): Promise<number | undefined> {
  if (size < 18) return undefined;
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, size - 4);
    return bytesRead === 4 ? buf.readUInt32LE(0) : undefined;
  } finally {
    await fh.close();
  }
}

/** A file read (or being read) and how long it was then. */
export type Known = FileIdentity & { size: number };

const allNul = (head: Buffer) => head.length > 0 && head.every((b) => b === 0);

/**
 * Whether the .gz `g` (decompressed first bytes `head`) was made of the file `h` knows. Files that
 * begin with a NUL hole (copytruncate under lumberjack) all begin alike: for them the length the
 * .gz declares must be the file's too.
 */
export async function isCopyOf(g: Sibling, head: Buffer, h: Known): Promise<boolean> {
  if (!headMatches(head, h)) return false;
  return !allNul(head) || (await trailerLength(g.path, g.st.size)) === h.size % 2 ** 32;
}

/** Hashes the up to 32 decompressed bytes before `offset` (the tail a checkpoint keeps), streamed. */
async function tailAt(path: string, offset: number): Promise<string | undefined> {
  const len = Math.min(TAIL_BYTES, offset);
  const fh = await GzipFile.open(path, Infinity).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, offset - len);
    return bytesRead === len ? fingerprintOf(buf) : undefined;
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * Of the checkpoints a .gz's first bytes match, those whose reading stopped at bytes the .gz holds
 * too (checked only when there is a doubt: several match, or they begin with a hole). Checkpoints
 * saved without a tail are kept: nothing tells them apart.
 */
async function confirmed(g: Sibling, head: Buffer, cands: Checkpoint[]): Promise<Checkpoint[]> {
  if (cands.length <= 1 && !allNul(head)) return cands;
  const out: Checkpoint[] = [];
  // A hole names no file: only a tail that checks out does (one saved without a tail is no evidence).
  const hole = allNul(head);
  for (const c of cands) if ((c.tail === undefined && !hole) || c.offset === 0 || (await tailAt(g.path, c.offset)) === c.tail) out.push(c);
  return out;
}

/** A .gz known by its inode and its decompressed first bytes (as the reader of it commits). */
export function gzIdentity(g: Sibling, head: Buffer): FileIdentity {
  return { dev: g.st.dev, ino: g.st.ino, fpLen: head.length, fp: fingerprintOf(head) };
}

export interface GzipPlan {
  /** Gzipped backups with lines not handed on, to read from their decompressed stream (oldest first). */
  unfinished: Unfinished[];
  /** Checkpoints (inode keys) whose file is accounted for by a .gz, read or to be read. */
  accounted: Set<string>;
  /** The decompressed first bytes of every .gz there: a file beginning so is not gone. */
  heads: Buffer[];
}

/**
 * After a restart: .gz backups holding lines of `path` not handed on. A .gz is the file it was made
 * of when its decompressed first bytes are that file's fingerprint (the checkpoint of the plain file,
 * one kept after it was deleted, or the .gz's own when we read from it before): it continues at the
 * saved offset, an offset in the decompressed stream. One made of no file we knew, after our last
 * commit, while the live file changed, was rotated and compressed while we were away: read whole.
 * A .gz whose original is still there as a plain file is left to that file.
 */
export async function findGzipUnfinished(path: string, mine: Checkpoint[], retired: Checkpoint[], live: { dev: number; ino: number; knownFp: boolean } | undefined): Promise<GzipPlan> {
  const plan: GzipPlan = { unfinished: [], accounted: new Set(), heads: [] };
  if (mine.length === 0) return plan;
  const since = madeSince(mine);
  const plains = await siblings(path);
  // Checkpoints whose file is still there as a plain file (its inode, beginning with its bytes): an
  // inode number alone may be another file's by now.
  const onDisk = new Set<string>();
  for (const p of plains) {
    const c = mine.find((m) => m.dev === p.st.dev && m.ino === p.st.ino);
    if (c && c.fpLen <= p.st.size && (await beginsWith(p.path, c.fpLen, c.fp))) onDisk.add(inodeKey(c));
  }
  const isLive = (c: Checkpoint) => live !== undefined && live.knownFp && live.dev === c.dev && live.ino === c.ino;
  for (const g of await gzipBackups(path)) {
    const info = await inspectGzip(g.path, true);
    if (info) plan.heads.push(info.head);
    if (!info || info.head.length === 0 || (await plainTwin(plains, info.head))) continue;
    // A weak checkpoint's offset lies within the head: whether it holds there is known from the head.
    const size = info.complete ? info.length : Infinity;
    const holds = (c: Checkpoint) => headMatches(info.head, c) && offsetHolds(c, info.head[c.offset - 1], size);
    let own = mine.find((c) => c.dev === g.st.dev && c.ino === g.st.ino && holds(c));
    // The .gz's inode number may be a file's before it that began with a hole too.
    if (own && allNul(info.head) && (await confirmed(g, info.head, [own])).length === 0) own = undefined;
    let matched: Checkpoint[] = own ? [own] : [];
    let alike: Checkpoint[] = [];
    if (!own) {
      // A retired file's inode number means nothing any more; a checkpoint's still names its file.
      const cands = (alike = [...mine.filter((c) => !isLive(c) && !onDisk.has(inodeKey(c))), ...retired].filter((c) => headMatches(info.head, c))).filter(holds);
      const longest = Math.max(0, ...cands.map((c) => c.fpLen));
      matched = await confirmed(g, info.head, cands.filter((c) => c.fpLen === longest));
    }
    // Beginning with a hole and confirmed as none of ours: possibly ours all the same (saved without a
    // tail), so read whole rather than skipped (duplicates, not loss).
    // Written after our last commit (a .gz is written once; logrotate shifting .N.gz renames it, which
    // changes its ctime only, and makes it no newer).
    const newBackup = (!live?.knownFp && g.st.mtimeMs > since) || (allNul(info.head) && !own);
    // A short fingerprint alone (a few bytes of an unterminated line) is weak evidence.
    if (matched.length > 0 && matched[0].fpLen < MIN_CONTENT_MATCH && !newBackup && !own) matched = [];
    for (const c of matched) plan.accounted.add(inodeKey(c));
    // Several files known by the same first bytes (a NUL hole): the least read, so nothing is lost.
    const least = matched.length > 0 ? matched.reduce((a, b) => (b.offset < a.offset ? b : a)) : undefined;
    const offset = least ? least.offset : newBackup ? 0 : undefined;
    if (offset === undefined) continue;
    // Read whole: it holds whatever of the files beginning alike it may be (no gap to report for them).
    if (offset === 0) for (const c of alike) plan.accounted.add(inodeKey(c));
    // Read to its end before (its own checkpoint, or its original's): the trailer says so without
    // decompressing it. Otherwise (several members, or not so) opening it checks the whole stream.
    if (offset > 0 && offset % 2 ** 32 === (await trailerLength(g.path, g.st.size))) continue;
    plan.unfinished.push({ path: g.path, offset, mtimeMs: rotatedAt(g), gz: true, gzId: gzIdentity(g, info.head), tail: least?.tail });
  }
  return plan;
}

/**
 * Where the .gz planned as `u` is now: logrotate shifts `.N.gz` to `.N+1.gz` between the plan and the
 * read (a rename keeps its inode). Undefined when it is gone (past `rotate N`).
 */
export async function gzipNow(path: string, u: Unfinished): Promise<string | undefined> {
  const id = u.gzId;
  if (!id) return u.path;
  return (await gzipBackups(path)).find((g) => g.st.ino === id.ino && g.st.dev === id.dev)?.path;
}

/**
 * A backup we were to read was deleted before we opened it: lumberjack's compression leaves it as
 * `<backup>.gz`, logrotate's as `<backup>.N.gz`. The .gz beginning with the bytes the file was known
 * by (lumberjack's name when it was known by no bytes, a file remembered when opened empty, or by a
 * NUL hole's, which any copytruncated file's .gz begins with too) continues it.
 */
export async function gzipTwin(path: string, u: Unfinished): Promise<Unfinished | undefined> {
  for (const g of await gzipBackups(path)) {
    // Known by no bytes, or by a NUL hole's (every copytruncated file under lumberjack begins so).
    if (!u.fpLen || u.fp === undefined || isHoleFingerprint({ fpLen: u.fpLen, fp: u.fp })) {
      if (g.path !== `${u.path}.gz`) continue;
    } else {
      const info = await inspectGzip(g.path, true);
      if (!info || !headMatches(info.head, { fpLen: u.fpLen, fp: u.fp })) continue;
    }
    return { path: g.path, offset: u.offset, mtimeMs: u.mtimeMs, gz: true };
  }
  return undefined;
}
