import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Every file operation the spill makes, and nothing else: tests replace it to inject ENOSPC, EIO,
 * short and torn writes, and a crash between any two steps. Paths are absolute.
 */
export interface SpillFile {
  /** Bytes written; fewer than asked is a short write (the caller writes the rest). */
  writev(parts: Buffer[], position: number): Promise<number>;
  write(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export type OpenMode = 'read' | 'update' | 'create';

export interface SpillIo {
  /** Never follows a symlink; 'create' makes a new 0600 file and fails if the name exists. */
  open(path: string, mode: OpenMode): Promise<SpillFile>;
  size(path: string): Promise<number>;
  readdir(dir: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates the folder (0700) if missing. */
  mkdir(dir: string): Promise<void>;
  syncDir(dir: string): Promise<void>;
}

/** A spill folder that cannot be used: the CLI turns it into exit 2 with this message. */
export class SpillError extends Error {
  override name = 'SpillError';
}

const FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY | constants.O_NOFOLLOW,
  update: constants.O_RDWR | constants.O_NOFOLLOW,
  create: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
};

class NodeFile implements SpillFile {
  constructor(private readonly fh: FileHandle) {}
  async writev(parts: Buffer[], position: number): Promise<number> {
    return (await this.fh.writev(parts, position)).bytesWritten;
  }
  async write(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.write(buf, offset, length, position)).bytesWritten;
  }
  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.read(buf, offset, length, position)).bytesRead;
  }
  sync(): Promise<void> {
    return this.fh.sync();
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeIo: SpillIo = {
  async open(path, mode) {
    return new NodeFile(await open(path, FLAGS[mode], 0o600));
  },
  async size(path) {
    return (await lstat(path)).size;
  },
  readdir: (dir) => readdir(dir),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  async mkdir(dir) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  async syncDir(dir) {
    const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

/** Reads a whole (small) file. */
export async function readWhole(io: SpillIo, path: string): Promise<Buffer> {
  const f = await io.open(path, 'read');
  try {
    const chunks: Buffer[] = [];
    for (let pos = 0; ; ) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const n = await f.read(buf, 0, buf.length, pos);
      if (n === 0) return Buffer.concat(chunks);
      chunks.push(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    await f.close();
  }
}

/** Writes all of `parts` at `position`, however short the writes the system makes. */
export async function writeAll(f: SpillFile, parts: Buffer[], position: number): Promise<number> {
  const length = parts.reduce((n, p) => n + p.length, 0);
  let done = await f.writev(parts, position);
  if (done < length) {
    const all = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    while (done < length) {
      const n = await f.write(all, done, length - done, position + done);
      if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      done += n;
    }
  }
  return length;
}

/**
 * A whole file, durably: a fresh temp file (a stale one is removed first, never followed), fsync,
 * rename over `name`, folder fsync. A failure leaves the old file as it was.
 */
export async function writeFileDurably(io: SpillIo, dir: string, name: string, data: Buffer, replaced?: () => void): Promise<void> {
  await replaceFile(io, dir, name, data, true);
  // The file is the new one from here, even if the folder's fsync fails: what knows its content follows now.
  replaced?.();
  await io.syncDir(dir);
}

/**
 * A whole file the same way without any fsync: it survives kill -9 (the page cache outlives the
 * process), not a power loss.
 */
export async function writeFileQuickly(io: SpillIo, dir: string, name: string, data: Buffer): Promise<void> {
  await replaceFile(io, dir, name, data, false);
}

async function replaceFile(io: SpillIo, dir: string, name: string, data: Buffer, sync: boolean): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  await io.unlink(tmp).catch(() => {});
  const f = await io.open(tmp, 'create');
  try {
    await writeAll(f, [data], 0);
    if (sync) await f.sync();
  } catch (err) {
    await f.close().catch(() => {});
    await io.unlink(tmp).catch(() => {});
    throw err;
  }
  await f.close();
  await io.rename(tmp, join(dir, name));
}

/** The errno code of a failed operation, for logs, metrics and /healthz. */
export const errCode = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? String(err);
