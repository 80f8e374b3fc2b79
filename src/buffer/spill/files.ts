import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../config/config.js';

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

export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  for (const n of names) if (n.endsWith('.seg.tmp')) await unlink(join(dir, n)).catch(() => {});
  return names.flatMap((n) => SEG_RE.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
}

import { writeFileDurably } from '../../state/durable.js';

export { syncDir, writeFileDurably } from '../../state/durable.js';

export type Cursor = Map<number, number>;

export async function readCursor(dir: string): Promise<Cursor> {
  try {
    const data = JSON.parse(await readFile(join(dir, 'cursor.json'), 'utf8')) as { version: number; acked: Record<string, number> };
    if (data.version !== 1) return new Map();
    return new Map(Object.entries(data.acked).map(([k, v]) => [Number(k), Number(v)]));
  } catch {
    // Without a cursor every segment is sent from its start: duplicates, never losses.
    return new Map();
  }
}

export function writeCursor(dir: string, cursor: Cursor): Promise<void> {
  return writeFileDurably(dir, 'cursor.json', JSON.stringify({ version: 1, acked: Object.fromEntries(cursor) }));
}

/** Moves a damaged segment aside as `*.corrupt`, keeping only the newest few. */
export async function moveAside(dir: string, seq: number): Promise<string> {
  const aside = `${segName(seq)}.${Date.now()}.corrupt`;
  await rename(join(dir, segName(seq)), join(dir, aside));
  const corrupt = (await readdir(dir)).filter((n) => n.endsWith('.corrupt')).sort();
  for (const n of corrupt.slice(0, Math.max(0, corrupt.length - KEEP_CORRUPT))) await unlink(join(dir, n)).catch(() => {});
  return join(dir, aside);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates the folder (0700) and takes its lock; a live owner is a configuration error. */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`--buffer-dir: cannot create ${dir} (${(err as NodeJS.ErrnoException).code})`);
  }
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => unlink(path).catch(() => {});
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new ConfigError(`--buffer-dir: cannot write in ${dir} (${code})`);
      const pid = Number(await readFile(path, 'utf8').catch(() => ''));
      if (pid > 0 && pid !== process.pid && alive(pid)) throw new ConfigError(`--buffer-dir: ${dir} is in use by another auditfwd (pid ${pid})`);
      await unlink(path).catch(() => {});
    }
  }
  throw new ConfigError(`--buffer-dir: cannot lock ${dir}`);
}
