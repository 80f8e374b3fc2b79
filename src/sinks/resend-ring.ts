import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { frameEnd } from '../framing/octet.js';

/**
 * Where the resend window keeps its copies: positions are offsets in [0, capacity). Operations are
 * synchronous (the window is written as each batch is handed on, read only to trim and to replay)
 * and may throw; the window then moves to memory (resend-window.ts).
 */
export interface Ring {
  write(data: Buffer, at: number): void;
  /** `length` bytes from `at`, copied to the start of `into`. */
  copyInto(at: number, length: number, into: Buffer): void;
  /** Where the octet-counted frame whose header starts at `at` ends. */
  frameEnd(at: number): number;
  /** The same bytes in memory (a FileRing whose file failed). */
  inMemory(): MemoryRing;
  close(): void;
}

export class MemoryRing implements Ring {
  readonly buf: Buffer;
  constructor(capacity: number) {
    // Its pages are touched as it fills.
    this.buf = Buffer.allocUnsafeSlow(capacity);
  }
  write(data: Buffer, at: number): void {
    this.buf.set(data, at);
  }
  copyInto(at: number, length: number, into: Buffer): void {
    this.buf.copy(into, 0, at, at + length);
  }
  frameEnd(at: number): number {
    return frameEnd(this.buf, at);
  }
  inMemory(): MemoryRing {
    return this;
  }
  close(): void {}
}

/** The file operations a FileRing makes: tests replace them to inject ENOSPC and EIO. */
export interface RingFileIo {
  /** Creates a new file only its owner can read (never through a symlink). */
  create(path: string): number;
  unlink(path: string): void;
  write(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
  read(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
  close(fd: number): void;
}

export const nodeRingIo: RingFileIo = {
  create: (path) => openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600),
  unlink: (path) => unlinkSync(path),
  write: (fd, buf, offset, length, position) => writeSync(fd, buf, offset, length, position),
  read: (fd, buf, offset, length, position) => readSync(fd, buf, offset, length, position),
  close: (fd) => closeSync(fd),
};

/** A frame header is at most 10 digits and a space (--max-line-bytes is below 1 GiB). */
const HEADER_MAX = 16;

/**
 * The window in a file: the kernel's page cache holds the bytes, which it can write out and drop
 * under memory pressure, instead of the process's heap (36 MiB of a follower's RSS with `auto` on a
 * host whose tcp_rmem allows 32 MiB). The file is unlinked as soon as it is made: nothing is left
 * behind by a crash, nothing else can open it, and it never needs a name in the folder's listing
 * (the spill reads only its own). It grows as the window fills, as the ring in memory did: filled
 * with zeros to its size when made (36 MiB), it held up the first batch (the follow bench's worst
 * latency: 17-20 ms for k8s-audit, 72 ms raw once, against 7-10 ms growing). A disk too small for
 * it is found at the write that fails; the window then moves to memory (resend-window.ts).
 */
export class FileRing implements Ring {
  private readonly fd: number;
  private readonly header = Buffer.alloc(HEADER_MAX);
  /** How far the file has been written: it is read back up to there. */
  private size = 0;

  constructor(
    private readonly capacity: number,
    dir: string,
    private readonly io: RingFileIo = nodeRingIo,
  ) {
    const path = join(dir, `.resend-window-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.fd = io.create(path);
    try {
      io.unlink(path);
    } catch (err) {
      io.close(this.fd);
      throw err;
    }
  }

  write(data: Buffer, at: number): void {
    // A short write is followed by another, which reports why (ENOSPC) if it cannot go on.
    this.all('write', data, at);
    this.size = Math.max(this.size, at + data.length);
  }

  copyInto(at: number, length: number, into: Buffer): void {
    this.all('read', into.subarray(0, length), at);
  }

  /** Reads or writes the whole of `buf` at `at`; a call that moves no bytes throws (looping on it would hold the event loop for good). */
  private all(op: 'read' | 'write', buf: Buffer, at: number): void {
    for (let done = 0; done < buf.length; ) {
      const n = this.io[op](this.fd, buf, done, buf.length - done, at + done);
      if (n === 0) throw Object.assign(new Error(`the resend window's file moved no bytes at ${at + done} of ${this.capacity}`), { code: 'EIO' });
      done += n;
    }
  }

  frameEnd(at: number): number {
    const n = this.io.read(this.fd, this.header, 0, Math.min(HEADER_MAX, this.capacity - at), at);
    return at + frameEnd(this.header.subarray(0, n), 0);
  }

  inMemory(): MemoryRing {
    const memory = new MemoryRing(this.capacity);
    this.all('read', memory.buf.subarray(0, this.size), 0);
    return memory;
  }

  close(): void {
    this.io.close(this.fd);
  }
}
