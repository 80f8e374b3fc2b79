import { closeSync, constants, fdatasync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../buffer/spill/crc32.js';
import { syncDir } from './durable.js';

/**
 * A file of small records overwritten in place, one synchronous pwrite each: what lets a position
 * reach the page cache (which outlives a kill -9) microseconds after its commit, where a JSON write
 * and rename takes five trips through a busy event loop (measured: 70 to 260 ms while catching up).
 *
 * Layout: a 512-byte header, then pairs of 512-byte slots (v1 files, 256 bytes each, are still read:
 * an entry with a soft position, Checkpoint.soft, takes up to about 400 bytes). A record goes to the slot of its pair not
 * written last (A/B), so a write torn by a power loss leaves the other one valid:
 *
 *   u32 magic "AFSL" | u32 CRC-32 of the rest | f64 sequence number | u16 payload length | payload
 *
 * The sequence number grows across the whole file and across runs: of two valid records the higher
 * is the newer. Slots never straddle a page. fsync is the caller's, on its own interval.
 */
const MAGIC = 0x4146534c;
const HEAD = Buffer.from('auditfwd slots v2\n');
const HEAD_V1 = Buffer.from('auditfwd slots v1\n');
export const SLOT_BYTES = 512;
const FIXED = 18;
/** The most a payload may hold. */
export const MAX_PAYLOAD = SLOT_BYTES - FIXED;
/** Far above a full --max-files table, far below what a read should take. */
const MAX_FILE_BYTES = 512 * 1024 * 1024;

const CREATE_NEW = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface SlotRecord {
  seq: number;
  payload: Buffer;
}

const pairAt = (pair: number) => SLOT_BYTES + pair * 2 * SLOT_BYTES;

/**
 * The valid records of the slot file `name` in `dir`; none when it is missing, is not a regular
 * file, is a link or too big (then it is simply not used: the JSON file still says where each file
 * was, a little earlier).
 */
export function readSlots(dir: string, name: string): SlotRecord[] {
  let fd: number;
  try {
    fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return [];
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    const head = buf.subarray(0, HEAD.length);
    const bytes = head.equals(HEAD) ? SLOT_BYTES : head.equals(HEAD_V1) ? 256 : 0;
    if (bytes === 0) return [];
    const out: SlotRecord[] = [];
    for (let at = bytes; at + bytes <= n; at += bytes) {
      const slot = buf.subarray(at, at + bytes);
      if (slot.readUInt32BE(0) !== MAGIC) continue;
      const len = slot.readUInt16BE(16);
      if (len > bytes - FIXED || crc32(slot.subarray(8, FIXED + len)) !== slot.readUInt32BE(4)) continue;
      out.push({ seq: slot.readDoubleBE(8), payload: Buffer.from(slot.subarray(FIXED, FIXED + len)) });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** An open slot file: records written in place, synchronously. */
export class SlotFile {
  private readonly scratch = Buffer.alloc(SLOT_BYTES);
  private readonly zeros = Buffer.alloc(2 * SLOT_BYTES);
  /** Per pair: the slot written last (0 or 1). */
  private readonly last: number[] = [];
  private fd: number | undefined;
  /** An fdatasync under way: the descriptor is closed only after it. */
  private syncing: Promise<void> = Promise.resolve();

  private constructor(
    fd: number,
    private readonly path: string,
    private seq: number,
  ) {
    this.fd = fd;
  }

  /**
   * A new file under `name` holding `initial` (pair i gets initial[i]), written to a temp file
   * created exclusively (never through a link), fsynced and renamed over the old one: the old one
   * stays valid until then. Numbering goes on after `lastSeq`. Mode 0600.
   */
  static async create(dir: string, name: string, initial: Buffer[], lastSeq: number): Promise<SlotFile> {
    const tmp = join(dir, `${name}.tmp`);
    rmSync(tmp, { force: true });
    const fd = openSync(tmp, CREATE_NEW, 0o600);
    const file = new SlotFile(fd, join(dir, name), lastSeq);
    try {
      writeSync(fd, Buffer.concat([HEAD, Buffer.alloc(SLOT_BYTES - HEAD.length)]), 0, SLOT_BYTES, 0);
      initial.forEach((p, i) => file.put(i, p));
      fsyncSync(fd);
      renameSync(tmp, file.path);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    await syncDir(dir);
    return file;
  }

  get usable(): boolean {
    return this.fd !== undefined;
  }

  /** Writes `payload` (at most MAX_PAYLOAD bytes) as the newest record of `pair`. Throws on failure. */
  put(pair: number, payload: Buffer): void {
    if (this.fd === undefined) return;
    const s = this.scratch;
    s.fill(0);
    s.writeUInt32BE(MAGIC, 0);
    s.writeDoubleBE(++this.seq, 8);
    s.writeUInt16BE(payload.length, 16);
    payload.copy(s, FIXED);
    s.writeUInt32BE(crc32(s.subarray(8, FIXED + payload.length)), 4);
    const half = (this.last[pair] ?? 1) ^ 1;
    writeSync(this.fd, s, 0, SLOT_BYTES, pairAt(pair) + half * SLOT_BYTES);
    this.last[pair] = half;
  }

  /** Empties both slots of `pair`. Throws on failure. */
  clear(pair: number): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, this.zeros, 0, this.zeros.length, pairAt(pair));
    this.last[pair] = 1;
  }

  /** fdatasync, off the event loop: what a power loss needs, on the caller's interval. */
  sync(): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return Promise.resolve();
    const p = this.syncing.then(() => new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))));
    this.syncing = p.catch(() => {});
    return p;
  }

  /**
   * After a failed write: the file goes, so that records older than what the JSON file will say
   * are never read back over it.
   */
  async discard(): Promise<void> {
    try {
      unlinkSync(this.path);
    } catch {
      // Nothing more to do: a disk that cannot unlink cannot write the JSON file either.
    }
    await this.close();
  }

  /** Stops writing at once; the descriptor is closed once an fdatasync under way is done. */
  async close(): Promise<void> {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    await this.syncing;
    closeSync(fd);
  }
}
