import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { privateDirProblem } from '../../state/private-dir.js';
import { errCode, readWhole, SpillError, writeAll, writeFileDurably, writeFileQuickly, type SpillIo } from './io.js';

/**
 * The spill folder: segment files named by a sequence number (read in ascending order), a cursor
 * file saying how far each segment has been handed on, and a lock so that two processes never
 * share (and resend, or delete) each other's spill.
 */
const SEG_RE = /^(\d{16})\.seg$/;
/** Leaves room below the first number for segments written in front of the others. */
export const FIRST_SEQ = 5e14;
/** Damaged segments kept for inspection; older ones are deleted. */
const KEEP_CORRUPT = 5;

export const segName = (seq: number) => `${String(seq).padStart(16, '0')}.seg`;

export async function listSegments(io: SpillIo, dir: string): Promise<number[]> {
  const names = await io.readdir(dir);
  for (const n of names) if (n.endsWith('.tmp')) await io.unlink(join(dir, n)).catch(() => {});
  return names.flatMap((n) => SEG_RE.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
}

export type Cursor = Map<number, number>;

export async function readCursor(io: SpillIo, dir: string): Promise<Cursor> {
  try {
    const data = JSON.parse((await readWhole(io, join(dir, 'cursor.json'))).toString()) as { version: number; acked: Record<string, number> };
    if (data.version !== 1) return new Map();
    return new Map(Object.entries(data.acked).map(([k, v]) => [Number(k), Number(v)]));
  } catch {
    // Without a cursor every segment is sent from its start: duplicates, never losses.
    return new Map();
  }
}

/** `quick`: without fsync (survives kill -9; a power loss may leave an older cursor: duplicates, never losses). */
export function writeCursor(io: SpillIo, dir: string, cursor: Cursor, quick = false): Promise<void> {
  const write = quick ? writeFileQuickly : writeFileDurably;
  return write(io, dir, 'cursor.json', Buffer.from(JSON.stringify({ version: 1, acked: Object.fromEntries(cursor) })));
}

/** Moves a damaged segment aside as `*.corrupt`, keeping only the newest few. */
export async function moveAside(io: SpillIo, dir: string, seq: number): Promise<string> {
  const aside = `${segName(seq)}.${Date.now()}.corrupt`;
  await io.rename(join(dir, segName(seq)), join(dir, aside));
  const corrupt = (await io.readdir(dir)).filter((n) => n.endsWith('.corrupt')).sort();
  for (const n of corrupt.slice(0, Math.max(0, corrupt.length - KEEP_CORRUPT))) await io.unlink(join(dir, n)).catch(() => {});
  return join(dir, aside);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/**
 * Like ssh with ~/.ssh: a folder others may write in (or that another user owns) could have its
 * segments swapped for forged audit lines, so it is refused rather than used.
 */
async function checkOwnership(dir: string): Promise<void> {
  const problem = privateDirProblem(dir, await lstat(dir));
  if (problem) throw new SpillError(`--buffer-dir: ${problem}`);
}

/** Creates the folder (0700), checks who may write in it, and takes its lock; a live owner is refused. */
export async function lockDir(io: SpillIo, dir: string): Promise<() => Promise<void>> {
  try {
    await io.mkdir(dir);
  } catch (err) {
    throw new SpillError(`--buffer-dir: cannot create ${dir} (${errCode(err)})`);
  }
  await checkOwnership(dir);
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const f = await io.open(path, 'create');
      await writeAll(f, [Buffer.from(String(process.pid))], 0).finally(() => f.close());
      return () => io.unlink(path).catch(() => {});
    } catch (err) {
      const code = errCode(err);
      if (code !== 'EEXIST') throw new SpillError(`--buffer-dir: cannot write in ${dir} (${code})`);
      const pid = Number(await readWhole(io, path).catch(() => ''));
      if (pid > 0 && pid !== process.pid && alive(pid)) throw new SpillError(`--buffer-dir: ${dir} is in use by another auditfwd (pid ${pid})`);
      await io.unlink(path).catch(() => {});
    }
  }
  throw new SpillError(`--buffer-dir: cannot lock ${dir}`);
}
