import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../ops/log.js';
import { writeFileDurably } from './durable.js';
import { inodeKey, type FileIdentity } from '../sources/file/identity.js';

export interface Checkpoint extends FileIdentity {
  path: string;
  offset: number;
  updatedAt: number;
}

const FILE = 'checkpoints.json';
/** Entries of files not seen for this long are forgotten. */
const RETAIN_MS = 7 * 24 * 3600 * 1000;

/**
 * Committed read positions, keyed by file identity. Positions are committed only after their
 * lines were handed on; the file on disk is rewritten atomically (temp, fsync, rename), 0600, at a
 * bounded interval and at shutdown. After a kill -9, lines handed on since the last save are sent
 * again: at most one interval's worth.
 */
export class CheckpointStore {
  private entries = new Map<string, Checkpoint>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  static async open(dir: string, log: Logger): Promise<CheckpointStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new CheckpointStore(dir, log);
    await store.load();
    return store;
  }

  private get path(): string {
    return join(this.dir, FILE);
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const data = JSON.parse(text) as { version: number; files: Checkpoint[] };
      if (data.version !== 1 || !Array.isArray(data.files)) throw new Error('unknown format');
      for (const c of data.files) this.entries.set(inodeKey(c), c);
    } catch (err) {
      // A damaged state file must not stop the forwarder: keep it for inspection, start afresh.
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside);
      this.log.error({ err: String(err), movedTo: aside }, 'checkpoint file unreadable; files are read from their start');
    }
  }

  get(id: { dev: number; ino: number }): Checkpoint | undefined {
    return this.entries.get(inodeKey(id));
  }

  all(): Checkpoint[] {
    return [...this.entries.values()];
  }

  commit(path: string, id: FileIdentity, offset: number): void {
    const isNew = !this.entries.has(inodeKey(id));
    this.entries.set(inodeKey(id), { path, dev: id.dev, ino: id.ino, fpLen: id.fpLen, fp: id.fp, offset, updatedAt: Date.now() });
    this.dirty = true;
    // A file followed for the first time is saved at once, not at the next interval: after a kill -9
    // followed by a rotation, the next run finds the rotated file only by an inode it knows.
    if (isNew) void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed'));
  }

  forget(id: { dev: number; ino: number }): void {
    if (this.entries.delete(inodeKey(id))) this.dirty = true;
  }

  startAutosave(intervalMs: number): void {
    this.timer = setInterval(() => void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed')), intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.save();
  }

  /** Saves are serialised: a save never overtakes an earlier one. */
  save(): Promise<void> {
    this.saving = this.saving.then(() => this.write());
    return this.saving;
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const cutoff = Date.now() - RETAIN_MS;
    for (const [k, c] of this.entries) if (c.updatedAt < cutoff) this.entries.delete(k);
    const body = JSON.stringify({ version: 1, files: [...this.entries.values()] });
    try {
      await writeFileDurably(this.dir, FILE, body);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }
}
