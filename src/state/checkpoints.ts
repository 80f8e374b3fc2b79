import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../ops/log.js';
import { writeFileDurably } from './durable.js';
import { writeFileQuickly } from './quick-write.js';
import { inodeKey, type FileIdentity } from '../sources/file/identity.js';

export interface Checkpoint extends FileIdentity {
  path: string;
  offset: number;
  updatedAt: number;
}

const FILE = 'checkpoints.json';
/** Entries of files not seen for this long are forgotten. */
const RETAIN_MS = 7 * 24 * 3600 * 1000;
/** Changed positions reach the state file (without fsync) at most this long after their commit. */
export const QUICK_SAVE_MS = 50;

/**
 * Committed read positions, keyed by file identity. Positions are committed only after their
 * lines were handed on. The file on disk is replaced atomically, 0600: within QUICK_SAVE_MS of a
 * change by a plain write and rename (enough to survive kill -9), and with fsync at the checkpoint
 * interval and at shutdown (what a power loss needs). After a kill -9, only the lines handed on in
 * about the last QUICK_SAVE_MS are sent again, whatever the interval.
 */
export class CheckpointStore {
  private entries = new Map<string, Checkpoint>();
  /** Changed since the last durable (fsynced) save. */
  private dirty = false;
  /** Changed since the last save of either kind. */
  private unsaved = false;
  private quickTimer: NodeJS.Timeout | undefined;
  private lastQuick = 0;
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
    this.changed();
    // A file followed for the first time is saved at once, not at the next interval: after a kill -9
    // followed by a rotation, the next run finds the rotated file only by an inode it knows.
    if (isNew) void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed'));
  }

  forget(id: { dev: number; ino: number }): void {
    if (this.entries.delete(inodeKey(id))) this.changed();
  }

  private changed(): void {
    this.dirty = true;
    this.unsaved = true;
    if (this.quickTimer || this.closed) return;
    const wait = Math.max(0, this.lastQuick + QUICK_SAVE_MS - Date.now());
    this.quickTimer = setTimeout(() => {
      this.quickTimer = undefined;
      this.lastQuick = Date.now();
      this.saving = this.saving.then(() => this.writeQuick()).catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed'));
    }, wait);
    this.quickTimer.unref();
  }

  startAutosave(intervalMs: number): void {
    this.timer = setInterval(() => void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed')), intervalMs);
    this.timer.unref();
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.quickTimer);
    this.quickTimer = undefined;
    await this.save();
  }

  /** Saves are serialised: a save never overtakes an earlier one. */
  save(): Promise<void> {
    this.saving = this.saving.then(() => this.write());
    return this.saving;
  }

  private body(): string {
    const cutoff = Date.now() - RETAIN_MS;
    for (const [k, c] of this.entries) if (c.updatedAt < cutoff) this.entries.delete(k);
    return JSON.stringify({ version: 1, files: [...this.entries.values()] });
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    this.unsaved = false;
    try {
      await writeFileDurably(this.dir, FILE, this.body());
    } catch (err) {
      this.dirty = true;
      this.unsaved = true;
      throw err;
    }
  }

  /** Not fsynced: `dirty` stays set for the next durable save. */
  private async writeQuick(): Promise<void> {
    if (!this.unsaved) return;
    this.unsaved = false;
    try {
      await writeFileQuickly(this.dir, FILE, this.body());
    } catch (err) {
      this.unsaved = true;
      throw err;
    }
  }
}
