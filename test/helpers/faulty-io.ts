import { nodeIo, type OpenMode, type SpillFile, type SpillIo } from '../../src/buffer/spill/io.js';

const fail = (code: string) => Promise.reject(Object.assign(new Error(`${code} (injected)`), { code }));

/**
 * The real file operations with failures injected: a disk that is full (or failing, read-only,
 * over quota) rejects what would make it grow, after writing a torn prefix; short writes; and a
 * crash after a given number of operations, after which every operation rejects.
 */
export class FaultyIo implements SpillIo {
  /** While set, writes, creates, renames and fsyncs fail with this code. */
  failWrites: string | undefined;
  /** Writes write only part of what they are given (and say so). */
  shortWrites = false;
  /** Operations made so far; at crashAt the process "dies": onCrash runs and every later one fails. */
  ops = 0;
  crashAt = Infinity;
  crashed = false;
  onCrash: () => void = () => {};
  /** Files opened and not yet closed: a dead process's files are closed by the kernel, so by closeAll here. */
  readonly openFiles = new Set<SpillFile>();
  /** closeAll ran: the process is gone, a file still being opened is closed at once. */
  private dead = false;

  /** Operations started and not finished: the real calls under the checks. */
  private readonly inflight = new Set<Promise<unknown>>();

  /** @internal for FaultyFile: `p` is a real file operation under way. */
  track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => void this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * What the kernel does for a process that died: its system calls under way finish (a rename is
   * done or not before the process is gone), then every file it had open is closed. A dead instance's
   * rename landing after the next one had read the folder replaced a segment under it (the model
   * test's spill then waited for bytes the file no longer had).
   */
  async closeAll(): Promise<void> {
    this.dead = true;
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    const files = [...this.openFiles];
    this.openFiles.clear();
    await Promise.all(files.map((f) => f.close().catch(() => {})));
  }

  private step(): Promise<void> | undefined {
    if (this.crashed) return fail('ECRASHED');
    if (++this.ops >= this.crashAt) {
      this.crashed = true;
      this.onCrash();
      return fail('ECRASHED');
    }
    return undefined;
  }

  private grows(): Promise<void> | undefined {
    return this.step() ?? (this.failWrites ? fail(this.failWrites) : undefined);
  }

  async open(path: string, mode: OpenMode): Promise<SpillFile> {
    await (mode === 'read' ? this.step() : this.grows());
    const f = await this.track(nodeIo.open(path, mode));
    if (this.dead) {
      // Opened while the "kernel" closed the dead process's files: it closes this one too.
      await f.close();
      return fail('ECRASHED');
    }
    this.openFiles.add(f);
    return new FaultyFile(this, f);
  }
  async size(path: string) {
    await this.step();
    return this.track(nodeIo.size(path));
  }
  async readdir(dir: string) {
    await this.step();
    return this.track(nodeIo.readdir(dir));
  }
  async rename(from: string, to: string) {
    await this.grows();
    return this.track(nodeIo.rename(from, to));
  }
  async unlink(path: string) {
    await this.step();
    return this.track(nodeIo.unlink(path));
  }
  async mkdir(dir: string) {
    await this.grows();
    return this.track(nodeIo.mkdir(dir));
  }
  async syncDir(dir: string) {
    await this.grows();
    return this.track(nodeIo.syncDir(dir));
  }

  /** @internal for FaultyFile */
  check(growing: boolean): Promise<void> | undefined {
    return growing ? this.grows() : this.step();
  }
}

class FaultyFile implements SpillFile {
  constructor(
    private readonly io: FaultyIo,
    private readonly f: SpillFile,
  ) {}
  async writev(parts: Buffer[], position: number): Promise<number> {
    const all = Buffer.concat(parts);
    return this.write(all, 0, all.length, position);
  }
  async write(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (this.io.failWrites && !this.io.crashed && length > 1) {
      // A full disk takes part of a write before it refuses the rest: a torn record.
      await this.io.track(this.f.write(buf, offset, Math.floor(length / 2), position));
    }
    await this.io.check(true);
    const n = this.io.shortWrites && length > 1 ? Math.ceil(length / 3) : length;
    return this.io.track(this.f.write(buf, offset, n, position));
  }
  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    await this.io.check(false);
    return this.io.track(this.f.read(buf, offset, length, position));
  }
  async sync(): Promise<void> {
    await this.io.check(true);
    return this.io.track(this.f.sync());
  }
  async truncate(length: number): Promise<void> {
    await this.io.check(false);
    return this.io.track(this.f.truncate(length));
  }
  async close(): Promise<void> {
    // Closing never fails in a way that matters, and a crashed process's files close anyway.
    if (!this.io.openFiles.delete(this.f)) return;
    return this.f.close();
  }
}
