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

export interface GzipInfo {
  /** Every member's trailer (CRC-32 and length) checked: the compressor closed the file. */
  complete: boolean;
  /** The first decompressed bytes (up to FINGERPRINT_BYTES): what the plain file was known by. */
  head: Buffer;
  /** Decompressed bytes (of what could be decompressed, when not complete). */
  length: number;
}

/** A decompressing stream over an open .gz, from its start; the handle stays open when it ends. */
function gunzipOf(fh: FileHandle): { raw: Readable; gz: Gunzip } {
  const raw = fh.createReadStream({ start: 0, autoClose: false });
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
  const { raw, gz } = gunzipOf(fh);
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
    await fh.close().catch(() => {});
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
  private pending: Buffer = Buffer.alloc(0);
  private streamPos = 0;
  /** Reads are served one after another (the read-ahead asks for the next before this one is used). */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly fh: FileHandle,
    /** The decompressed length, checked when the file was found complete. */
    readonly length: number,
  ) {}

  static async open(path: string, length: number): Promise<GzipFile> {
    return new GzipFile(await openRegular(path), length);
  }

  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    const p = this.chain.then(() => this.readAt(buf, offset, length, position));
    this.chain = p.catch(() => {});
    return p;
  }

  private async readAt(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position < this.streamPos || !this.stream) this.restart();
    const iter = this.stream!.iter;
    let n = 0;
    while (n < length) {
      if (this.pending.length === 0) {
        const next = await iter.next();
        if (next.done) break;
        this.pending = next.value;
      }
      if (this.streamPos < position) {
        const skip = Math.min(position - this.streamPos, this.pending.length);
        this.pending = this.pending.subarray(skip);
        this.streamPos += skip;
        continue;
      }
      const k = this.pending.copy(buf, offset + n, 0, Math.min(length - n, this.pending.length));
      this.pending = this.pending.subarray(k);
      this.streamPos += k;
      n += k;
    }
    return { bytesRead: n };
  }

  private restart(): void {
    this.stopStream();
    const { raw, gz } = gunzipOf(this.fh);
    this.stream = { raw, gz, iter: (gz as AsyncIterable<Buffer>)[Symbol.asyncIterator]() };
    this.pending = Buffer.alloc(0);
    this.streamPos = 0;
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
    await this.fh.close();
  }
}
