import { mkdir, stat } from 'node:fs/promises';

/** A folder other users could write to or own: its files could be swapped or read under us. */
export class UnsafeDirError extends Error {}

/**
 * Makes sure `dir` is a folder only this user can change, as ssh does with ~/.ssh: created 0700 when
 * missing; refused when it is group- or world-writable or owned by another user (root-owned is
 * fine: root can change anything anyway). Never chmods an existing folder: a mode someone set on
 * purpose, or an attacker's folder, is the operator's to fix.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  let st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new UnsafeDirError(`cannot inspect ${dir} (${err.code})`);
  });
  if (!st) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      st = await stat(dir);
    } catch (err) {
      throw new UnsafeDirError(`cannot create ${dir} (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  if (!st.isDirectory()) throw new UnsafeDirError(`${dir} is not a directory`);
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new UnsafeDirError(`${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}); it must be private to auditfwd`);
  }
  if (st.mode & 0o022) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new UnsafeDirError(`${dir} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${mode}); chmod 700 it`);
  }
}
