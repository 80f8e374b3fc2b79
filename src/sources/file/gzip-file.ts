import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { FINGERPRINT_BYTES } from '../../state/file-identity.js';
import { openRegular } from './open-regular.js';

/** What a reader needs of an open file: positional reads, its size and links, and closing. */
export interface ReadableFile {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number; nlink: number; dev: number; ino: number; mtimeMs: number }>;
  close(): Promise<void>;
}

/** Two reads (one read and the read-ahead) of decompressed bytes are kept to be read again. */
const KEEP_BYTES = 2 * 1024 * 1024;

export interface GzipInfo {
  /** Every member's trailer (CRC-32 and length) checked: the compressor closed the file. */
  complete: boolean;
  /** The first decompressed bytes (up to FINGERPRINT_BYTES): what the plain file was known by. */
  head: Buffer;
  /** Decompressed bytes (of what could be decompressed, when not complete). */
  length: number;
}

/** A decompressing stream over a .gz, from its start (a stream of its own, never sharing a handle). */
function gunzipOf(path: string): { raw: Readable; gz: Gunzip } {
  const raw = createReadStream(path);
  const gz = createGunzip();
  raw.on('error', (err) => gz.destroy(err));
  raw.pipe(gz);
  return { raw, gz };
}

/**
 * Decompresses a .gz, streamed (never more than a chunk in memory), keeping its first bytes.
 * `headOnly` stops after them. Undefined when the file cannot be opened.
 */
export async function inspectGzip(path: string, headOnly = false): Promise<GzipInfo | undefined> {
  const fh = await openRegular(path).catch(() => undefined);
  if (!fh) return undefined;
  await fh.close();
  const { raw, gz } = gunzipOf(path);
  const head: Buffer[] = [];
  let headLen = 0;
  let length = 0;
  let complete = false;
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      if (headLen < FINGERPRINT_BYTES) {
        const take = chunk.subarray(0, FINGERPRINT_BYTES - headLen);
        head.push(Buffer.from(take));
        headLen += take.length;
      }
      length += chunk.length;
      if (headOnly && headLen >= FINGERPRINT_BYTES) break;
    }
    complete = !headOnly || headLen < FINGERPRINT_BYTES;
  } catch {
    // Truncated (still being written, or its writer died), or damaged: not complete.
  } finally {
    raw.destroy();
    gz.destroy();
  }
  return { complete, head: Buffer.concat(head), length };
}

/**
 * A complete .gz read as the plain file it was: positions are offsets in the decompressed stream,
 * as they were in the plain file, so a saved offset carries over. Reads must go forward (a reader
 * reads on from where it was); one going back starts the decompression again.
 */
export class GzipFile implements ReadableFile {
  private stream: { raw: Readable; gz: Gunzip; iter: AsyncIterator<Buffer> } | undefined;
  /** The last decompressed chunks (at least KEEP_BYTES): a reader going back a little (to a NUL run) reads them again. */
  private kept: Array<{ pos: number; buf: Buffer }> = [];
  /** Position after the last chunk decompressed. */
  private end = 0;
  /** Reads are served one after another (the read-ahead asks for the next before this one is used). */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    /** The decompressed length, checked when the file was found complete. */
    readonly length: number,
  ) {}

  static async open(path: string, length: number): Promise<GzipFile> {
    return new GzipFile(await openRegular(path), path, length);
  }

  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    const p = this.chain.then(() => this.readAt(buf, offset, length, position));
    this.chain = p.catch(() => {});
    return p;
  }

  private async readAt(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (!this.stream || position < (this.kept[0]?.pos ?? this.end)) this.restart();
    let n = 0;
    while (n < length) {
      const p = position + n;
      const c = this.kept.find((k) => p >= k.pos && p < k.pos + k.buf.length);
      if (c) {
        const from = p - c.pos;
        n += c.buf.copy(buf, offset + n, from, Math.min(c.buf.length, from + length - n));
        continue;
      }
      const next = await this.stream!.iter.next();
      if (next.done) break;
      this.kept.push({ pos: this.end, buf: next.value });
      this.end += next.value.length;
      while (this.kept.length > 1 && this.end - this.kept[1].pos >= KEEP_BYTES) this.kept.shift();
    }
    return { bytesRead: n };
  }

  private restart(): void {
    this.stopStream();
    const { raw, gz } = gunzipOf(this.path);
    this.stream = { raw, gz, iter: (gz as AsyncIterable<Buffer>)[Symbol.asyncIterator]() };
    this.kept = [];
    this.end = 0;
  }

  private stopStream(): void {
    this.stream?.raw.destroy();
    this.stream?.gz.destroy();
    this.stream = undefined;
  }

  async stat(): Promise<{ size: number; nlink: number; dev: number; ino: number; mtimeMs: number }> {
    const st = await this.fh.stat();
    return { size: this.length, nlink: st.nlink, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs };
  }

  async close(): Promise<void> {
    await this.chain;
    this.stopStream();
    this.kept = [];
    await this.fh.close();
  }
}
