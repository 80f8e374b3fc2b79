import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../../ops/log.js';
import type { Stats } from '../../ops/stats.js';
import type { BatchBuffer } from '../../record.js';
import type { CheckpointStore } from '../../state/checkpoints.js';
import type { Encoder } from '../../transforms/encoder.js';
import { LineBatcher, type Chunk } from '../line-batcher.js';
import type { Source } from '../source.js';
import { FINGERPRINT_BYTES, fingerprint, identify, sameContent, type FileIdentity } from './identity.js';
import { Waker } from './watch.js';

export interface TailerOptions {
  encoder: Encoder;
  buffer: BatchBuffer;
  stats: Stats;
  checkpoints?: CheckpointStore;
  log: Logger;
  /** Where a file that exists at start and has no checkpoint begins. */
  startAt: 'beginning' | 'end';
  /** Read to the current end, then finish. */
  once: boolean;
  pollMs: number;
  maxLineBytes: number;
  readChunkBytes?: number;
}

type Change = 'none' | 'grown' | 'truncated' | 'replaced' | 'missing';

/**
 * Follows one path across rotations. The open file is known by its identity (device, inode and a
 * fingerprint of its first bytes); positions are committed per identity, and only from the
 * batch's hand-on callback, never on read.
 */
export class FileTailer implements Source {
  private fh: FileHandle | undefined;
  private id: FileIdentity | undefined;
  /** Next byte to read. */
  private readPos = 0;
  /** Where the lines of the next batch start (the end of the last one pushed). */
  private batchStart = 0;
  private readonly batcher: LineBatcher;
  private readonly waker: Waker;
  private readonly readBuf: Buffer;
  private stopped = false;
  private opened = false;
  private warnedMissing = false;
  /** Handed-on position in the open file: what lag() counts from. */
  private committed = 0;

  constructor(
    readonly name: string,
    private readonly opts: TailerOptions,
  ) {
    this.batcher = new LineBatcher(opts.encoder, opts.maxLineBytes);
    this.waker = new Waker(name, opts.pollMs);
    this.readBuf = Buffer.allocUnsafe(opts.readChunkBytes ?? 256 * 1024);
  }

  stop(): void {
    this.stopped = true;
    this.waker.wake();
  }

  async run(): Promise<void> {
    try {
      while (!this.stopped) {
        if (!this.fh) {
          if (await this.openPath()) continue;
          if (this.opts.once) return;
          await this.waker.wait();
          continue;
        }
        if (await this.readMore()) continue;
        if (this.opts.once) {
          if (this.batcher.pending > 0) {
            this.opts.log.warn({ file: this.name, bytes: this.batcher.pending, offset: this.readPos - this.batcher.pending }, 'last line has no LF yet; left for a later run');
          }
          return;
        }
        const change = await this.detectChange();
        if (change === 'grown') continue;
        if (change === 'none' || change === 'missing') await this.waker.wait();
        else if (change === 'truncated') await this.restartTruncated();
        else await this.switchToNewFile();
      }
    } finally {
      this.waker.close();
      await this.fh?.close();
      this.fh = undefined;
    }
  }

  /** Opens what the path names now; false when there is nothing there yet. */
  private async openPath(): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await open(this.name, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!this.warnedMissing) this.opts.log.warn({ file: this.name }, 'file does not exist yet; waiting for it');
        this.warnedMissing = true;
      } else {
        this.opts.log.error({ file: this.name, code }, 'cannot open file; retrying');
      }
      return false;
    }
    const firstOpen = !this.opened;
    this.opened = true;
    this.fh = fh;
    this.id = await identify(fh);
    this.readPos = await this.startOffset(fh, this.id, firstOpen && !this.warnedMissing);
    this.committed = this.readPos;
    this.batchStart = this.readPos;
    this.opts.log.info({ file: this.name, ino: this.id.ino, offset: this.readPos }, 'following file');
    return true;
  }

  private async startOffset(fh: FileHandle, id: FileIdentity, existedAtStart: boolean): Promise<number> {
    const size = (await fh.stat()).size;
    const cp = this.opts.checkpoints?.get(id);
    if (cp && cp.fpLen <= size && cp.offset <= size && (await fingerprint(fh, cp.fpLen)) === cp.fp) return cp.offset;
    if (cp) this.opts.log.info({ file: this.name, ino: id.ino }, 'inode reused by another file; reading it from the start');
    if (this.opts.startAt === 'end' && existedAtStart) return this.lastLineEnd(fh, size);
    return 0;
  }

  /** Where the last complete line ends, so that starting "at the end" never starts mid-line. */
  private async lastLineEnd(fh: FileHandle, size: number): Promise<number> {
    let end = size;
    while (end > 0) {
      const len = Math.min(this.readBuf.length, end);
      const { bytesRead } = await fh.read(this.readBuf, 0, len, end - len);
      const lf = this.readBuf.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (lf !== -1) return end - len + lf + 1;
      end -= len;
    }
    return 0;
  }

  /** Reads one chunk and pushes its lines; false at the end of the file. */
  private async readMore(): Promise<boolean> {
    const fh = this.fh!;
    const { bytesRead } = await fh.read(this.readBuf, 0, this.readBuf.length, this.readPos);
    if (bytesRead === 0) return false;
    const start = this.readPos;
    this.readPos += bytesRead;
    const chunk = this.batcher.process(this.readBuf.subarray(0, bytesRead));
    if (chunk.consumed > 0) await this.push(chunk, start + chunk.consumed);
    return true;
  }

  private async push(chunk: Chunk, position: number): Promise<void> {
    this.opts.stats.addLines(this.name, chunk.lines);
    const { checkpoints } = this.opts;
    const id = this.id!;
    const path = this.name;
    const origin = { source: path, start: this.batchStart, end: position };
    this.batchStart = position;
    // Even a batch whose lines were all filtered out travels through the buffer, so that its
    // position is committed in order with the batches before it.
    await this.opts.buffer.push({
      frames: chunk.frames,
      count: chunk.count,
      onHandedOn: () => {
        if (this.id?.ino === id.ino && this.id.dev === id.dev) this.committed = position;
        checkpoints?.commit(path, id, position);
      },
      origin,
    });
  }

  async lag(): Promise<number> {
    const size = await this.fh?.stat().then((st) => st.size, () => 0);
    return Math.max(0, (size ?? 0) - this.committed);
  }

  private async detectChange(): Promise<Change> {
    const fh = this.fh!;
    const size = (await fh.stat()).size;
    if (size < this.readPos || !(await sameContent(fh, this.id!))) return 'truncated';
    let onPath;
    try {
      onPath = await stat(this.name);
    } catch {
      onPath = undefined;
    }
    if (size > this.readPos) return 'grown';
    if (!onPath) return 'missing';
    if (onPath.ino !== this.id!.ino || onPath.dev !== this.id!.dev) return 'replaced';
    if (this.id!.fpLen < FINGERPRINT_BYTES && size > this.id!.fpLen) this.id = await identify(fh);
    return 'none';
  }

  /** copytruncate: the file was emptied under us; what it holds now is new. */
  private async restartTruncated(): Promise<void> {
    this.opts.log.info({ file: this.name, offset: this.readPos }, 'file truncated; reading it from the start');
    this.batcher.reset();
    this.readPos = 0;
    this.committed = 0;
    this.batchStart = 0;
    this.id = await identify(this.fh!);
  }

  /** Rotation: finish the old file (it is still open), then follow the new one from its start. */
  private async switchToNewFile(): Promise<void> {
    while (await this.readMore());
    const rest = this.batcher.flush();
    if (rest.lines > 0) await this.push(rest, this.readPos);
    this.opts.log.info({ file: this.name, ino: this.id!.ino, offset: this.readPos }, 'file rotated; finished the old one');
    await this.fh!.close();
    this.fh = undefined;
    this.id = undefined;
  }
}
