import { fstatSync } from 'node:fs';
import { stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../../batch.js';
import type { Checkpoint, CheckpointStore } from '../../state/checkpoints.js';
import type { Encoder } from '../../transforms/encoder.js';
import { LineBatcher, type Chunk } from '../line-batcher.js';
import type { Source } from '../source.js';
import { fdOf, FINGERPRINT_BYTES, fingerprintOf, identifyWithHead, inodeKey, resumable, sameContent, type FileIdentity } from '../../state/file-identity.js';
import { NotRegularFileError, openRegular } from './open-regular.js';
import { lastLineEnd } from './line-end.js';
import { extendIdentity, keyPrefix, lastBytes, type Reader } from './reader.js';
import { ReadAhead } from './read-ahead.js';
import { planResume } from './resume.js';
import { findCopy, openFound, type Sibling, type Unfinished } from './rotated.js';
import { SeenFiles } from './seen-files.js';
import { NewLiveFiles } from './new-live.js';
import { Waker } from './watch.js';
import { GzipFile, inspectGzip, type GzipInfo, type ReadableFile } from './gzip-file.js';
import { gzipNow, gzipTwin, headMatches } from './gzip-backups.js';
import type { Rfc5424Framer } from '../../framing/rfc5424.js';
import { gapFrames } from '../../buffer/spill/gap.js';
import { defaultNumber } from '../../config/options.js';
import { processStartMs } from '../../clock.js';

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
  /** How long a rotated file is still read after its last growth (writers that have not reopened yet). */
  rotateWaitMs?: number;
  /** Finish when the path has been missing this long (a glob match that went away). */
  retireWhenGoneMs?: number;
  /** When auditfwd started (default: the process's start): without history, backups renamed since are read. */
  startedAtMs?: number;
  /** Give each batch its messages' keys (Batch.keys): the sink de-duplicates by them. */
  messageKeys?: boolean;
  /** Writes the gap record for bytes of a file deleted before they were read. */
  gapFramer?: Rfc5424Framer;
}

type Change = 'none' | 'grown' | 'truncated' | 'replaced' | 'missing';

/** Carries only a position commit through the buffer, in order with the batches before it. */
const EMPTY_CHUNK: Chunk = { frames: Buffer.alloc(0), count: 0, lines: 0, consumed: 0 };
/**
 * A read (up to 512 KiB) is one batch, with a position marked every this many bytes of it: a sink
 * writes the batch in those pieces and a kill -9 repeats at most the piece the socket held part of.
 * Smaller reads would cost 20-60% more CPU per GB; pieces cost a write each.
 */
const MARK_BYTES = 128 * 1024;
/** How long the unread part of a file is watched before it counts as growing or not (catchingUp). */
const LAG_WINDOW_MS = 1000;

export const DEFAULT_ROTATE_WAIT_MS = defaultNumber('rotate-wait');

/**
 * Follows one path across rotations. A file is known by its identity (device, inode and a fingerprint
 * of its first bytes); positions are committed per identity, and only from the batch's hand-on
 * callback, never on read. After a rename, the old file is read to its end before the new one, and
 * is still read for `rotateWaitMs` after its last growth for writers that have not reopened yet.
 */
export class FileTailer implements Source {
  private cur: Reader | undefined;
  /** Rotated files with unread lines found at start: read, oldest first, before the live file. */
  private backlog: Unfinished[] = [];
  private lingering: Reader[] = [];
  /** Per open file, the position handed on: what lag() counts from. */
  private committed = new WeakMap<Reader, number>();
  private readonly waker: Waker;
  private readonly reads: ReadAhead;
  /** Where sameContent reads a file's first bytes back. */
  private readonly scratch = Buffer.allocUnsafe(FINGERPRINT_BYTES);
  private readonly rotateWaitMs: number;
  private stopped = false;
  private opened = false;
  /** We followed this path in an earlier run: a file there we do not know is new, read from its start. */
  private hasHistory = false;
  /** While rotated files are read: a new file at the path, recorded before it is opened (new-live.ts). */
  private readonly newLive: NewLiveFiles | undefined;
  private warnedMissing = false;
  /** The live file's inode whose saved offset belongs to content that was copied away (copytruncate). */
  private truncatedWhileAway: string | undefined;
  private missingSince = 0;
  /** The last reason the path could not be opened or read, logged once. */
  private openProblem: string | undefined;
  private warnedNul = false;
  private readonly seen: SeenFiles;

  constructor(
    readonly name: string,
    private readonly opts: TailerOptions,
  ) {
    this.waker = new Waker(name, opts.pollMs);
    this.reads = new ReadAhead(opts.readChunkBytes ?? 512 * 1024);
    this.rotateWaitMs = opts.rotateWaitMs ?? DEFAULT_ROTATE_WAIT_MS;
    this.seen = new SeenFiles(name);
    this.newLive = opts.checkpoints && new NewLiveFiles(name, opts.checkpoints);
  }

  stop(): void {
    this.stopped = true;
    this.waker.wake();
  }

  async run(): Promise<void> {
    for (;;) {
      try {
        return await this.follow();
      } catch (err) {
        if (this.stopped) return;
        await this.recover(err as NodeJS.ErrnoException);
      }
    }
  }

  /**
   * A read failed (EIO, a file swapped for something unreadable): only this path is affected. It
   * starts over from the committed positions, as a restart would: what was read and not yet handed
   * on is read again (sent twice at worst, never lost).
   */
  private async recover(err: NodeJS.ErrnoException): Promise<void> {
    this.opts.stats.addSourceError(this.name);
    // Once per kind of failure: one that persists is retried at every poll, not logged at every poll.
    if (this.openProblem !== err.message) this.opts.log.error({ file: this.name, code: err.code, err: err.message }, 'reading failed; reopening from the last committed position');
    this.openProblem = err.message;
    await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs));
  }

  /** Follows the path until stopped (or, with --once, to its end); closes everything it opened. */
  private async follow(): Promise<void> {
    try {
      // Listed before the plan looks: a file renamed while the plan is made is then not met, and
      // the first open reads it as rotated past us.
      const listed = await SeenFiles.list(this.name);
      await this.planResume();
      // Without history, reading from the beginning: a backup renamed since the process started
      // (a slow start on a busy master, a writer that rotates every second) was the live file then.
      const fresh = !this.hasHistory && this.opts.startAt === 'beginning';
      await this.seen.meetSiblings(listed, fresh ? (this.opts.startedAtMs ?? processStartMs) : Infinity);
      while (!this.stopped) {
        const r = this.cur;
        if (!r) {
          const next = this.backlog.shift();
          if (next ? await this.openRotated(next) : await this.openPath()) continue;
          if (await this.serviceLingering()) continue;
          if (this.opts.once || this.gone()) return;
          await this.waker.wait();
          continue;
        }
        if (r.rotated) await this.newLive?.check();
        if (await this.readMore(r)) continue;
        if (r.rotated) {
          this.cur = undefined;
          // A .gz read to its end is complete: nobody writes to it any more.
          if (r.fh instanceof GzipFile) await this.finish(r);
          else this.linger(r);
          continue;
        }
        if (await this.serviceLingering()) continue;
        if (this.opts.once) {
          const pending = r.batcher.pending;
          if (pending > 0) this.opts.log.warn({ file: this.name, bytes: pending, offset: r.pos - pending }, 'last line has no LF yet; left for a later run');
          return;
        }
        const change = await this.detectChange(r);
        if (change === 'grown') continue;
        if (change === 'none' || change === 'missing') await this.waker.wait();
        else if (change === 'truncated') await this.restartTruncated(r);
        else await this.switchToNewFile(r);
      }
      await this.finishDeleted();
    } finally {
      this.waker.close();
      await this.reads.settle();
      for (const r of [this.cur, ...this.lingering]) await r?.fh.close().catch(() => {});
      this.cur = undefined;
      this.lingering = [];
    }
  }

  /**
   * At stop: a rotated file that is deleted cannot be found by the next run, so its last line
   * (unterminated, or written late) is handed on now; rotated files still there wait for that run.
   */
  private async finishDeleted(): Promise<void> {
    const readers = [...this.lingering, ...(this.cur?.rotated ? [this.cur] : [])];
    for (const r of readers) {
      const st = await r.fh.stat().catch(() => undefined);
      if (!st || st.nlink > 0) continue;
      while (await this.readMore(r));
      this.lingering = this.lingering.filter((x) => x !== r);
      if (this.cur === r) this.cur = undefined;
      await this.finish(r);
    }
  }

  /** Before the first open: unread rotated files of this path, from an earlier run. */
  private async planResume(): Promise<void> {
    const store = this.opts.checkpoints;
    if (!store) return;
    const plan = await planResume(this.name, store, this.opts.log);
    this.hasHistory = plan.hasHistory;
    this.backlog = plan.backlog;
    this.truncatedWhileAway = plan.truncatedWhileAway;
    // Retired once the gap record is handed on: reported once, not at every start.
    for (const c of plan.lost) await this.reportUnread(this.name, c.offset, c.size ?? c.offset, () => store.retire(c));
  }

  private newReader(fh: ReadableFile, { id, head }: { id: FileIdentity; head: Buffer }, path: string, pos: number, rotated: boolean): Reader {
    const r: Reader = { fh, id, head, path, pos, size: pos, tail: Buffer.alloc(0), batchStart: pos, rotated, batcher: new LineBatcher(this.opts.encoder, this.opts.maxLineBytes), lastGrowth: Date.now() };
    this.committed.set(r, pos);
    this.seen.met(id);
    return r;
  }

  private async openRotated(u: Unfinished): Promise<boolean> {
    if (u.gz) return this.openGzip(u);
    const found = await openFound(this.name, u, openRegular);
    if (!found) {
      // Deleted since: compressed (lumberjack's <backup>.gz, logrotate's .N.gz), or gone with what we had not read.
      const twin = await gzipTwin(this.name, u);
      if (twin) this.backlog.unshift(twin);
      else if (u.size !== undefined && u.size > u.offset) await this.reportUnread(u.path, u.offset, u.size);
      return twin !== undefined;
    }
    const { fh, path } = found;
    const ident = await identifyWithHead(fh);
    const id = ident.id;
    this.cur = this.newReader(fh, ident, path, u.offset, true);
    // Known as ours from now on, even if we stop before its (unterminated) last line is handed on.
    await this.push(this.cur, EMPTY_CHUNK, u.offset);
    this.opts.log.info({ file: this.name, rotated: path, ino: id.ino, offset: u.offset }, 'following rotated file');
    return true;
  }

  /** Opens what the path names now; false when there is nothing there yet. */
  /**
   * A .gz backup, read from its decompressed stream from the saved offset, once it is complete (a
   * .gz still being written is waited for; one whose writer went quiet for --rotate-wait without
   * finishing it is left, logged).
   */
  private async openGzip(u: Unfinished): Promise<boolean> {
    const path = await gzipNow(this.name, u);
    const info = path === undefined ? undefined : await this.completeGzip(path);
    // Its inode number may be another .gz's now: the bytes it was known by tell.
    if (!path || !info || info.length <= u.offset || (u.gzId && !headMatches(info.head, u.gzId))) return false;
    const fh = await GzipFile.open(path, info.length).catch(() => undefined);
    if (!fh) return false;
    const st = await fh.stat();
    const id: FileIdentity = { dev: st.dev, ino: st.ino, fpLen: info.head.length, fp: fingerprintOf(info.head) };
    this.cur = this.newReader(fh, { id, head: info.head }, path, u.offset, true);
    await this.push(this.cur, EMPTY_CHUNK, u.offset);
    this.opts.log.info({ file: this.name, rotated: path, offset: u.offset, length: info.length }, 'reading gzipped backup');
    return true;
  }

  /** The .gz once its every member's trailer checks out; undefined when gone, or left unfinished. */
  private async completeGzip(path: string): Promise<GzipInfo | undefined> {
    let lastMtime = -1;
    let quietSince = Date.now();
    while (!this.stopped) {
      const info = await inspectGzip(path);
      if (!info || info.complete) return info;
      const mtime = (await stat(path).catch(() => undefined))?.mtimeMs;
      if (mtime === undefined) return undefined;
      if (mtime !== lastMtime) quietSince = Date.now();
      if (lastMtime === -1) this.opts.log.info({ file: this.name, rotated: path }, 'gzipped backup not complete yet; waiting for it');
      lastMtime = mtime;
      if (Date.now() - quietSince >= Math.max(this.rotateWaitMs, 2 * this.opts.pollMs)) {
        this.opts.log.warn({ file: this.name, rotated: path }, 'gzipped backup incomplete and no longer written (its gzip trailer does not check out); not read');
        return undefined;
      }
      await this.waker.wait();
    }
    return undefined;
  }

  /**
   * Bytes of a file deleted before they were read (kube-apiserver's maxbackup or maxage, while we
   * were away or behind): counted, logged, and told to the drain in a gap record.
   */
  private async reportUnread(path: string, from: number, to: number, then: () => void = () => {}): Promise<void> {
    this.opts.stats.addBytesUnread(this.name, to - from);
    this.opts.log.warn({ file: this.name, rotated: path, from, to, bytes: to - from }, 'file deleted before it was read to its end; its unread bytes are lost (counted in auditfwd_bytes_unread_total, a gap record sent)');
    const framer = this.opts.gapFramer;
    const gap = framer ? gapFrames(framer, [{ source: path, start: from, end: to, lines: -1, bytes: to - from }], 'deleted before it was read') : { frames: Buffer.alloc(0), count: 0 };
    await this.opts.buffer.push({ ...gap, onHandedOn: then });
  }

  private async openPath(): Promise<boolean> {
    let fh;
    try {
      fh = await openRegular(this.name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!this.warnedMissing) this.opts.log.warn({ file: this.name }, 'file does not exist yet; waiting for it');
        this.warnedMissing = true;
        if (this.missingSince === 0) this.missingSince = Date.now();
      } else if (this.openProblem !== (err as Error).message) {
        // Logged and counted once per kind of problem, not at every poll; the path is still watched.
        this.opts.stats.addSourceError(this.name);
        if (err instanceof NotRegularFileError) this.opts.log.error({ file: this.name, kind: err.kind }, `${err.message}: not read (only regular files are followed; a FIFO can be piped to stdin); watching the path`);
        else this.opts.log.error({ file: this.name, code }, 'cannot open file; retrying');
      }
      if (code !== 'ENOENT') this.openProblem = (err as Error).message;
      return false;
    }
    this.openProblem = undefined;
    this.missingSince = 0;
    const firstOpen = !this.opened;
    // Also at the first open: the file that was live at start may have been renamed away since.
    const mayHaveSkipped = !firstOpen || this.hasHistory || this.opts.startAt === 'beginning';
    const ident = await identifyWithHead(fh);
    if (mayHaveSkipped && (await this.queueSkipped(fh, ident))) {
      await fh.close();
      return true;
    }
    this.opened = true;
    const id = ident.id;
    const pos = await this.startOffset(fh, id, firstOpen && !this.warnedMissing);
    this.cur = this.newReader(fh, ident, this.name, pos, false);
    // On disk as followed before a line of it is read: if it is renamed away while we are stopped
    // (even by kill -9 right after its first lines went out), the next run finds it by its inode
    // and reads the rest. A fresh state folder's first file durably: a run without history would
    // take the renamed file for old history.
    await this.opts.checkpoints?.remember(this.name, [{ id, offset: pos }], firstOpen && !this.hasHistory).catch((err) => this.opts.log.error({ file: this.name, err: String(err) }, 'saving checkpoints failed'));
    await this.push(this.cur, EMPTY_CHUNK, pos);
    this.opts.log.info({ file: this.name, ino: id.ino, offset: pos }, 'following file');
    return true;
  }

  private gone(): boolean {
    const limit = this.opts.retireWhenGoneMs;
    return limit !== undefined && this.missingSince > 0 && this.lingering.length === 0 && Date.now() - this.missingSince >= limit;
  }

  private async startOffset(fh: FileHandle, id: FileIdentity, existedAtStart: boolean): Promise<number> {
    const size = (await fh.stat()).size;
    const cp = this.opts.checkpoints?.get(id);
    if (cp && inodeKey(id) === this.truncatedWhileAway) return 0;
    if (cp && (await resumable(fh, cp, size))) return cp.offset;
    if (cp && (await this.finishCopyOf(cp))) this.opts.log.info({ file: this.name, ino: id.ino, offset: cp.offset }, 'file truncated (copytruncate) before it was opened; finished its copy, reading it from the start');
    else if (cp) this.opts.log.info({ file: this.name, ino: id.ino }, 'inode reused by another file; reading it from the start');
    if (this.opts.startAt === 'end' && existedAtStart && !this.hasHistory) return lastLineEnd(fh, size);
    return 0;
  }

  /** Reads one chunk and pushes its lines; false at the end of the file. */
  private async readMore(r: Reader): Promise<boolean> {
    let data = await this.reads.read(r.fh, r.pos);
    if (data.length === 0) return false;
    const nul = data.indexOf(0);
    if (nul === 0) return this.skipNuls(r, data);
    // Lines up to a NUL run; the run itself is skipped by the next read.
    if (nul > 0) data = data.subarray(0, nul);
    const bytesRead = data.length;
    // copytruncate can empty and refill the live file past our position between two reads: then
    // these bytes are the middle of new content. The file still beginning with the bytes we know,
    // checked after the read, proves they are not; otherwise detectChange sees the truncation
    // (what this read saw of the old content is in the copy).
    if (!r.rotated && r.head.length > 0 && !(await sameContent(r.fh, r.head, this.scratch))) return false;
    const start = r.pos;
    const before = r.tail;
    r.pos += bytesRead;
    r.size = Math.max(r.size, r.pos);
    r.tail = lastBytes(before, data);
    r.lastGrowth = Date.now();
    r.afterText = true;
    extendIdentity(r, start, data);
    const chunk = r.batcher.process(data, this.opts.messageKeys ? start : undefined, MARK_BYTES);
    if (chunk.consumed > 0) {
      const marks = chunk.marks && this.marksOf(r, chunk.marks, start, before, data);
      await this.push(r, chunk, start + chunk.consumed, lastBytes(before, data.subarray(0, chunk.consumed)), marks, this.catchingUp(r));
    }
    // --rotate-wait counts from when we could look again: time blocked on a full buffer is not quiet.
    r.lastGrowth = Date.now();
    return true;
  }

  /**
   * A run of NUL bytes is a hole, not text: a writer without O_APPEND (lumberjack) keeps writing at its
   * own position after logrotate's copytruncate emptied the file. Skipped and counted, never sent;
   * a partial line before it is ended there, never glued to what follows the hole.
   */
  private async skipNuls(r: Reader, data: Buffer): Promise<boolean> {
    let n = 0;
    while (n < data.length && data[n] === 0) n++;
    const start = r.pos;
    r.pos += n;
    r.size = Math.max(r.size, r.pos);
    r.tail = lastBytes(r.tail, data.subarray(0, n));
    r.lastGrowth = Date.now();
    extendIdentity(r, start, data.subarray(0, n));
    const cut = r.afterText === true && start > 0;
    r.afterText = false;
    this.opts.stats.addNulSkipped(this.name, n);
    // A hole inside a live file we were reading: copytruncate moved what was before it to a copy,
    // and the part of it we had not read yet is only there.
    if (!r.rotated && cut) {
      const end = await this.readCopy(r, start, true);
      if (end !== undefined && end > r.pos) r.pos = end;
    }
    if (!this.warnedNul) this.opts.log.warn({ file: this.name, offset: start, bytes: n }, 'skipping NUL bytes (a hole left by copytruncate under a writer without O_APPEND); counted in auditfwd_nul_bytes_skipped_total, logged once');
    this.warnedNul = true;
    const rest = r.batcher.pending > 0 ? r.batcher.flush(this.opts.messageKeys ? start : undefined) : EMPTY_CHUNK;
    await this.push(r, rest, r.pos);
    return true;
  }

  /** Bytes in the files being read (the live one and rotated ones) not yet handed on. */
  async lag(): Promise<number> {
    let n = 0;
    for (const r of [this.cur, ...this.lingering]) {
      if (!r) continue;
      const size = await r.fh.stat().then((st) => st.size, () => 0);
      n += Math.max(0, size - (this.committed.get(r) ?? r.pos));
    }
    return n;
  }

  /**
   * Whether the live file's unread part has not grown over the last LAG_WINDOW_MS (Batch.canWait):
   * the drain may then pace the reading without the writer getting further ahead. Measured over a
   * window, not from one read to the next: a writer that appends in bursts grows the file between
   * some reads only. A rotated file is read as before: what grows meanwhile is the live file, which
   * is not watched from here. A sync fstat: a thread-pool round trip per read costs more than the call.
   */
  private catchingUp(r: Reader): boolean {
    const fd = fdOf(r.fh);
    if (r.rotated || fd === undefined) return false;
    let bytes: number;
    try {
      bytes = fstatSync(fd).size - r.pos;
    } catch {
      return false;
    }
    const now = Date.now();
    let u = r.unread;
    if (!u || now - u.at >= LAG_WINDOW_MS) u = r.unread = { bytes, at: now, notGrowing: !u || bytes <= u.bytes };
    return u.notGrowing;
  }

  /**
   * `end`: the bytes before `position` (known when it is where the reader is). `marks`: commits
   * inside the batch (marksOf). `canWait`: Batch.canWait (catchingUp).
   */
  private async push(r: Reader, chunk: Chunk, position: number, end = position === r.pos ? r.tail : undefined, marks?: Batch['marks'], canWait = false): Promise<void> {
    this.opts.stats.addLines(this.name, chunk.lines);
    const { checkpoints } = this.opts;
    const id = r.id;
    const path = this.name;
    const origin = { source: r.path, start: r.batchStart, end: position };
    const size = r.size;
    const tail = end && end.length > 0 ? fingerprintOf(end) : undefined;
    r.batchStart = position;
    // Even a batch whose lines were all filtered out travels through the buffer, so that its
    // position is committed in order with the batches before it.
    await this.opts.buffer.push({
      frames: chunk.frames,
      count: chunk.count,
      onHandedOn: () => {
        this.committed.set(r, position);
        checkpoints?.commit(path, id, position, size, tail);
      },
      // In the spill, not fsynced: a kill -9 in this boot need not read these lines again.
      ...(checkpoints && { onSpilled: () => checkpoints.commitSoft(id, position, size, tail) }),
      origin,
      ...(marks && { marks }),
      release: chunk.release,
      memory: chunk.memory,
      ...(chunk.offsets && chunk.count > 0 && { keys: { prefix: keyPrefix(r), offsets: chunk.offsets } }),
      ...(canWait && { canWait }),
    });
  }

  /**
   * Commits inside a batch: what a sink writing it in pieces has handed on of it. The read began at
   * `base` after the bytes `before`: each mark's commit carries the hash of the bytes before ITS
   * position (a .gz is matched by it), taken from copies of those bytes made now (the read's buffer
   * is reused) and hashed only when the mark is committed.
   */
  private marksOf(r: Reader, marks: NonNullable<Chunk['marks']>, base: number, before: Buffer, data: Buffer): NonNullable<Batch['marks']> {
    const { checkpoints } = this.opts;
    const id = r.id;
    const path = this.name;
    const size = r.size;
    const ends = marks.consumed.map((n) => lastBytes(before, data.subarray(0, n)));
    return {
      bytes: marks.bytes,
      progress: (k) => {
        const position = base + marks.consumed[k];
        // A batch sent again (its connection failed) reports its pieces again: never backwards.
        if (position <= (this.committed.get(r) ?? 0)) return;
        this.committed.set(r, position);
        checkpoints?.commit(path, id, position, size, fingerprintOf(ends[k]));
      },
    };
  }

  /** A rotated file is done: its last line needs no LF (nobody will complete it). */
  private async finish(r: Reader): Promise<void> {
    const rest = r.batcher.flush(this.opts.messageKeys ? r.pos : undefined);
    // Committed even when empty: a finished file (a copytruncate copy too) is then known as ours and
    // read to its end, so the next run does not take it for a backup it has not seen.
    await this.push(r, rest.lines > 0 ? rest : EMPTY_CHUNK, r.pos);
    const deleted = (await r.fh.stat().catch(() => undefined))?.nlink === 0;
    const store = this.opts.checkpoints;
    if (deleted && store) {
      // Deleted and read to its end: its inode number is free for another file, which must not
      // inherit this position. Retired in order, after the commit above (a .gz of it is known).
      const id = r.id;
      await this.opts.buffer.push({ frames: Buffer.alloc(0), count: 0, onHandedOn: () => store.retire(id) });
    }
    await r.fh.close().catch(() => {});
    this.seen.read(r.id, r.pos);
    this.opts.log.info({ file: this.name, rotated: r.path, ino: r.id.ino, offset: r.pos }, 'finished rotated file');
  }

  private linger(r: Reader): void {
    r.rotated = true;
    r.lastGrowth = Date.now();
    this.lingering.push(r);
  }

  /** Reads what late writers appended to rotated files; finishes those quiet for rotateWaitMs. */
  private async serviceLingering(): Promise<boolean> {
    let progressed = false;
    for (const r of [...this.lingering]) {
      while (!this.stopped && (await this.readMore(r))) progressed = true;
      if (this.stopped) return false;
      if (this.opts.once || Date.now() - r.lastGrowth >= this.rotateWaitMs) {
        // Released only once read to its end: --rotate-wait bounds waiting for writes, never reading.
        if (((await r.fh.stat().catch(() => undefined))?.size ?? 0) > r.pos) {
          progressed = true;
          continue;
        }
        this.lingering.splice(this.lingering.indexOf(r), 1);
        await this.finish(r);
      }
    }
    return progressed;
  }

  private async detectChange(r: Reader): Promise<Change> {
    const st = await r.fh.stat();
    r.size = Math.max(r.size, st.size);
    if (st.size < r.pos || !(await sameContent(r.fh, r.head, this.scratch))) return 'truncated';
    if (st.size > r.pos) return 'grown';
    const onPath = await stat(this.name).catch(() => undefined);
    // Deleted (no name left): nothing more will come, but a file renamed away may still grow.
    if (!onPath) return st.nlink === 0 ? 'replaced' : 'missing';
    if (onPath.ino !== r.id.ino || onPath.dev !== r.id.dev) return 'replaced';
    return 'none';
  }

  /**
   * copytruncate: the file was emptied under us and what it holds now is new. What we had not read
   * yet is in the copy: if the copy is next to it, it is read from our position to its end first.
   */
  private async restartTruncated(r: Reader): Promise<void> {
    if ((await this.readCopy(r, r.pos)) !== undefined) {
      this.opts.log.info({ file: this.name, offset: r.pos }, 'file truncated (copytruncate); finished its copy, reading it from the start');
      r.batcher = new LineBatcher(this.opts.encoder, this.opts.maxLineBytes);
    } else {
      this.opts.log.info({ file: this.name, offset: r.pos }, 'file truncated; reading it from the start');
      r.batcher.reset();
    }
    this.seen.read(r.id, r.pos);
    r.pos = 0;
    r.size = 0;
    r.unread = undefined;
    r.tail = Buffer.alloc(0);
    r.afterText = false;
    r.batchStart = 0;
    r.head = Buffer.alloc(0);
    r.id = { ...r.id, fpLen: 0, fp: '' };
    // Still the file met on this inode, though it no longer begins as it did.
    this.seen.met(r.id);
    // Commit "start of this inode" in order with what came before, so that a restart before the
    // file's next line does not resume at the old offset inside the new content.
    await this.push(r, EMPTY_CHUNK, 0);
  }

  /**
   * copytruncate: reads the copy next to the file (beginning with the bytes of `r`, longer than
   * `from`, or reaching it when not `longer`) from `from` to its end, continuing `r`'s partial line;
   * its size, or undefined without one.
   */
  private async readCopy(r: Reader, from: number, longer = false): Promise<number | undefined> {
    const copy = await findCopy(this.name, r.id, from);
    if (!copy || (longer && copy.st.size <= from)) return undefined;
    return this.readToEnd(copy, from, r.batcher);
  }

  private async readToEnd(file: Sibling, from: number, batcher: LineBatcher): Promise<number | undefined> {
    const fh = await openRegular(file.path).catch(() => undefined);
    if (!fh) return undefined;
    const c: Reader = { ...this.newReader(fh, await identifyWithHead(fh), file.path, from, true), batcher };
    while (await this.readMore(c));
    await this.finish(c);
    return c.pos;
  }

  /**
   * A file recorded while rotated files were read (new-live.ts), copytruncated before it was opened:
   * what was not read of it is only in its copy, read now so that it goes out before what the file
   * holds after the truncation. Not when the copy was read already, as a file rotated past us.
   */
  private async finishCopyOf(cp: Checkpoint): Promise<boolean> {
    const copy = await findCopy(this.name, cp, cp.offset);
    if (!copy || copy.st.size <= cp.offset) return false;
    if (this.lingering.some((r) => r.id.ino === copy.st.ino && r.id.dev === copy.st.dev) || (await this.seen.wasRead(copy))) return false;
    return (await this.readToEnd(copy, cp.offset, new LineBatcher(this.opts.encoder, this.opts.maxLineBytes))) !== undefined;
  }

  /** Rotation: finish the old file (it is still open), then follow the new one from its start. */
  private async switchToNewFile(r: Reader): Promise<void> {
    while (await this.readMore(r));
    this.opts.log.info({ file: this.name, ino: r.id.ino, offset: r.pos }, 'file rotated; reading the new one');
    this.cur = undefined;
    this.linger(r);
  }

  /**
   * Backups that were live after our last file and before the one just opened (the writer rotated
   * more than once between two looks): queued, oldest first, to be read before it. Looked for after
   * the open, so that a rotation between the look and the open is not missed.
   */
  private async queueSkipped(fh: FileHandle, live: { id: FileIdentity; head: Buffer }): Promise<boolean> {
    // A backup beginning like the file at the path is logrotate's copy of it (maybe still being
    // written), not a file rotated past us: that file is read, and its copy once it is truncated.
    const skipped = await this.seen.rotatedPast(this.lingering.map((x) => ({ ...x.id, size: x.size })), { dev: live.id.dev, ino: live.id.ino, head: live.head });
    if (skipped.length === 0) return false;
    // The file just opened, renamed since: read from where its checkpoint says (the first open after
    // a restart), as it would have been at the path.
    const renamed = skipped.find((u) => u.ino === live.id.ino && u.dev === live.id.dev);
    const cp = renamed && this.opts.checkpoints?.get(live.id);
    if (renamed && cp && inodeKey(live.id) !== this.truncatedWhileAway && (await resumable(fh, cp, (await fh.stat()).size))) renamed.offset = cp.offset;
    this.backlog.push(...skipped);
    for (const u of skipped) if (u.gzId && !this.opts.checkpoints?.get(u.gzId)) this.opts.checkpoints?.commit(this.name, u.gzId, u.offset);
    this.opts.log.info({ file: this.name, rotated: skipped.map((u) => u.path) }, 'rotated more than once since the last look; reading the files in between first');
    return true;
  }
}
