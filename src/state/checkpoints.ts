import { constants } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../telemetry/log.js';
import { CHECKPOINT_VERSION, CheckpointFormatError, validateCheckpoints, type LoadedCheckpoints } from './checkpoint-schema.js';
import { writeFileDurably, writeFileQuickly } from './durable.js';
import { inodeKey, type FileIdentity } from './file-identity.js';
import { SlotPositions } from './slot-positions.js';
import { markRunning, markStopped } from './run-marker.js';
import { effective, readBootId, type SoftPosition } from './soft-position.js';

/** A state folder that cannot be used: the CLI turns it into exit 2 with this message. */
export class StateError extends Error {
  override name = 'StateError';
}

export interface Checkpoint extends FileIdentity {
  path: string;
  offset: number;
  updatedAt: number;
  /** The file's size as last seen by the reader (at least `offset`): what a deletion leaves unread. */
  size?: number;
  /** Hash of the bytes just before `offset` (up to 32): tells apart files that begin alike. */
  tail?: string;
  /** Further than `offset`, for this boot only: the lines up to it are in the spill, not fsynced. */
  soft?: SoftPosition;
}

const FILE = 'checkpoints.json';
/** Entries of files not seen for this long are forgotten. */
const RETAIN_MS = 7 * 24 * 3600 * 1000;
/** Files read that are gone, remembered (by their first bytes) so that a .gz made of one is not read again. */
const MAX_RETIRED = 256;
/** Damaged entries logged one by one; the rest are counted in one line. */
const MAX_DROP_LINES = 20;
/** Far above a full --max-files table (about 200 bytes an entry), far below what a string can hold. */
const MAX_STATE_BYTES = 256 * 1024 * 1024;

/**
 * The state file's text; undefined when there is none; `why` when it is there but must not be
 * read: a link (to a file the attacker wants echoed or parsed), a FIFO or folder, or too big.
 */
async function readStateFile(path: string): Promise<string | { why: string } | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return { why: 'is a symbolic link' };
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { why: 'is not a regular file' };
    if (st.size > MAX_STATE_BYTES) return { why: `is larger than ${MAX_STATE_BYTES} bytes` };
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}
/** Changed positions reach the state file (without fsync) at most this long after their commit. */
export const QUICK_SAVE_MS = 50;

/**
 * Committed read positions, keyed by file identity. Positions are committed only after their
 * lines were handed on. The file on disk is replaced atomically, 0600: within QUICK_SAVE_MS of a
 * change by a plain write and rename (enough to survive kill -9), and with fsync at the checkpoint
 * interval and at shutdown (what a power loss needs). After a kill -9, only the lines handed on in
 * about the last QUICK_SAVE_MS are sent again, whatever the interval.
 */
/**
 * Another file on this inode now (the number was free again, or the file was truncated): what the
 * one before was is retired, not overwritten, so that a .gz made of it is still known.
 */
function otherFile(prev: Checkpoint, id: FileIdentity): boolean {
  return prev.fpLen > 0 && (prev.fpLen > id.fpLen || (prev.fpLen === id.fpLen && prev.fp !== id.fp));
}

export class CheckpointStore {
  private entries = new Map<string, Checkpoint>();
  private retiredList: Checkpoint[] = [];
  /** Changed since the last durable (fsynced) save. */
  private dirty = false;
  /** Changed since the last save of either kind. */
  private unsaved = false;
  private quickTimer: NodeJS.Timeout | undefined;
  private lastQuick = 0;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  /** Each change, in place within the tick (what a kill -9 leaves); undefined when it cannot be written. */
  private slots: SlotPositions<Checkpoint> | undefined;

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
    /** This boot's id: soft positions of it are used, others ignored; none written without it. */
    private readonly boot: string | undefined,
  ) {}

  /** The last process that used this folder did not stop cleanly (kill -9, OOM, power loss). */
  lastRunDied = false;

  /** `opts.boot`: this boot's id (tests; default read from the kernel; null: none). */
  static async open(dir: string, log: Logger, opts: { boot?: string | null } = {}): Promise<CheckpointStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new CheckpointStore(dir, log, 'boot' in opts ? (opts.boot ?? undefined) : readBootId());
    try {
      await store.load();
      store.dropOtherBoots();
    } catch (err) {
      // Whatever is wrong with the state file, never a crash (and a crash loop under systemd).
      throw new StateError(`--state-dir: cannot read ${store.path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    store.lastRunDied = await markRunning(dir);
    try {
      await store.openSlots();
    } catch (err) {
      // Not fatal: checkpoints.json alone still holds positions, saved a little later.
      SlotPositions.remove(dir);
      log.error({ dir, err: String(err) }, 'cannot write positions.slots; positions are saved in checkpoints.json alone');
    }
    return store;
  }

  /**
   * The slots over what checkpoints.json said. Files retired since it was written are listed in it
   * before the slot file is started afresh (the slots then no longer hold their retirement).
   */
  private async openSlots(): Promise<void> {
    const validate = (c: unknown) => validateCheckpoints({ version: CHECKPOINT_VERSION, files: [c] }).entries[0];
    const { lastSeq, retired } = SlotPositions.load(this.dir, this.entries, validate, otherFile);
    this.dropOtherBoots();
    const fresh = retired.filter((c) => c.fpLen > 0 && !this.retiredList.some((r) => r.dev === c.dev && r.ino === c.ino && r.fpLen === c.fpLen && r.fp === c.fp));
    for (const c of fresh) this.keepRetired(c);
    if (fresh.length > 0) {
      this.dirty = true;
      await this.save();
    }
    this.slots = await SlotPositions.open(this.dir, this.entries, lastSeq, this.log);
  }

  private get path(): string {
    return join(this.dir, FILE);
  }

  private async load(): Promise<void> {
    const read = await readStateFile(this.path);
    if (read === undefined) return;
    let loaded: LoadedCheckpoints | undefined;
    let why = typeof read === 'string' ? undefined : read.why;
    if (why === undefined) {
      try {
        loaded = validateCheckpoints(JSON.parse(read as string));
      } catch (err) {
        // JSON.parse quotes the text it failed on: the file's bytes stay out of the log.
        why = err instanceof CheckpointFormatError ? err.message : 'not valid JSON';
      }
    }
    if (!loaded) {
      // A damaged state file must not stop the forwarder: keep it for inspection, start afresh.
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside);
      this.log.error({ reason: why, movedTo: aside }, 'checkpoint file unusable; files are read from their start');
      return;
    }
    loaded.dropped.slice(0, MAX_DROP_LINES).forEach((d) => this.log.warn({ file: this.path }, `checkpoint ${d}; dropped, that file is read as new`));
    if (loaded.dropped.length > MAX_DROP_LINES) this.log.warn({ file: this.path, more: loaded.dropped.length - MAX_DROP_LINES }, 'more damaged checkpoint entries dropped');
    for (const c of loaded.entries) this.entries.set(inodeKey(c), c);
    this.retiredList = loaded.retired.slice(-MAX_RETIRED);
    // Dropped entries must not be saved back as they were.
    if (loaded.dropped.length > 0) this.dirty = true;
  }

  /** Soft positions of another boot (a power loss or reboot since) no longer hold: the durable offset does. */
  private dropOtherBoots(): void {
    const drop = (c: Checkpoint) => (c.soft && c.soft.boot !== this.boot ? effective(c, undefined) : c);
    for (const [k, c] of this.entries) if (c.soft && c.soft.boot !== this.boot) this.entries.set(k, drop(c));
    this.retiredList = this.retiredList.map(drop);
  }

  /** Entries as sources see them: at their soft position where it holds (effective). */
  get(id: { dev: number; ino: number }): Checkpoint | undefined {
    const c = this.entries.get(inodeKey(id));
    return c && effective(c, this.boot);
  }

  all(): Checkpoint[] {
    return [...this.entries.values()].map((c) => effective(c, this.boot));
  }

  /** Files of `path` read and gone (deleted, or renamed out of sight), most recent last. */
  retired(path: string): Checkpoint[] {
    return this.retiredList.filter((c) => c.path === path).map((c) => effective(c, this.boot));
  }

  /**
   * `at`: when (default now). A position recorded while planning a start, not read, keeps the time of
   * the last position read: backups made after that are what the next start must look at.
   */
  commit(path: string, id: FileIdentity, offset: number, size?: number, tail?: string, at = Date.now()): void {
    let prev = this.entries.get(inodeKey(id));
    if (prev && otherFile(prev, id)) {
      this.retire(prev);
      prev = undefined;
    }
    const known = Math.max(offset, size ?? 0);
    const end = tail ?? (prev?.offset === offset ? prev.tail : undefined);
    // Still ahead of a position going forward: kept until the durable one reaches it. A position
    // going back (the file was truncated and read again) ends it.
    const soft = prev?.soft && prev.soft.offset > offset && offset >= prev.offset ? prev.soft : undefined;
    this.entries.set(inodeKey(id), { path, dev: id.dev, ino: id.ino, fpLen: id.fpLen, fp: id.fp, offset, updatedAt: at, size: known, ...(end ? { tail: end } : {}), ...(soft && { soft }) });
    this.changed(inodeKey(id), undefined, true);
    // A file followed for the first time is saved at once, not at the next interval: after a kill -9
    // followed by a rotation, the next run finds the rotated file only by an inode it knows.
    if (!prev) void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed'));
  }

  /**
   * The lines up to `offset` are in the spill file, not yet fsynced (Batch.onSpilled): a restart in
   * this boot resumes there, one after a power loss from the durable offset. Only ever ahead of the
   * durable offset, and only for a file already known (its durable commit comes later).
   */
  commitSoft(id: FileIdentity, offset: number, size?: number, tail?: string, at = Date.now()): void {
    if (this.boot === undefined) return;
    const prev = this.entries.get(inodeKey(id));
    if (!prev || otherFile(prev, id) || offset <= prev.offset || offset <= (prev.soft?.offset ?? 0)) return;
    const soft = { offset, ...(tail && { tail }), boot: this.boot, at };
    this.entries.set(inodeKey(id), { ...prev, fpLen: id.fpLen, fp: id.fp, size: Math.max(prev.size ?? 0, offset, size ?? 0), soft });
    this.changed(inodeKey(id), undefined, true);
  }

  /**
   * Records files as followed from an offset before any of their lines is read, and resolves once the
   * state file says so (a write and rename; fsynced too when `durably`). Otherwise a kill -9 after their
   * first lines were handed on, and before their commit was saved, leaves a next run that does not
   * know them: once renamed away (or older than that run's last commit), they would be taken for old
   * history and the rest never read. Files already known keep their entry.
   */
  async remember(path: string, files: Array<{ id: FileIdentity; offset: number }>, durably: boolean, at = Date.now()): Promise<void> {
    // A file remembered from its start while it had few bytes is known by more of them once it has them.
    const widens = (prev: Checkpoint, id: FileIdentity, offset: number) => prev.offset === 0 && offset === 0 && prev.fpLen < id.fpLen;
    const fresh = files.filter(({ id, offset }) => {
      const prev = this.entries.get(inodeKey(id));
      return !prev || otherFile(prev, id) || widens(prev, id, offset);
    });
    if (fresh.length === 0) return;
    for (const { id, offset } of fresh) {
      const prev = this.entries.get(inodeKey(id));
      if (prev && otherFile(prev, id)) this.retire(prev);
      this.entries.set(inodeKey(id), { path, dev: id.dev, ino: id.ino, fpLen: id.fpLen, fp: id.fp, offset, updatedAt: at, size: offset });
      this.slots?.changed(inodeKey(id));
    }
    this.dirty = true;
    this.unsaved = true;
    await (durably ? this.save() : this.chain(() => this.writeQuick()));
  }

  forget(id: { dev: number; ino: number }): void {
    if (this.entries.delete(inodeKey(id))) this.changed(inodeKey(id));
  }

  /**
   * The file is gone: its inode number is free for another file, which must not inherit this
   * position. What it was (its first bytes, how far it was read) is kept a while longer, bounded, so
   * that a compressed copy of it (lumberjack's .gz) is read only from there.
   */
  retire(id: { dev: number; ino: number }): void {
    const c = this.entries.get(inodeKey(id));
    if (!c) return;
    this.entries.delete(inodeKey(id));
    if (c.fpLen > 0) this.keepRetired(c);
    // The slot says "retired" with the entry as it was: a kill -9 before the next save of
    // checkpoints.json still finds it retired (not live, not forgotten) at the next start.
    this.changed(inodeKey(id), c.fpLen > 0 ? c : undefined);
  }

  private keepRetired(c: Checkpoint): void {
    this.retiredList.push(c);
    if (this.retiredList.length > MAX_RETIRED) this.retiredList.shift();
  }

  /**
   * `retired`: the entry of `key` was retired (the slot keeps it as such). `now`: its slot is written
   * before this returns, not at the end of the tick: a sink hands on several pieces in one tick
   * (each taken by the kernel at once), and a kill -9 among them lost their commits (measured: 318
   * lines repeated).
   */
  private changed(key: string, retired?: Checkpoint, now = false): void {
    this.slots?.changed(key, retired);
    if (now) this.slots?.flush();
    this.dirty = true;
    this.unsaved = true;
    if (this.quickTimer || this.closed) return;
    const wait = Math.max(0, this.lastQuick + QUICK_SAVE_MS - Date.now());
    this.quickTimer = setTimeout(() => {
      this.quickTimer = undefined;
      this.lastQuick = Date.now();
      this.chain(() => this.writeQuick()).catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed'));
    }, wait);
    this.quickTimer.unref();
  }

  startAutosave(intervalMs: number): void {
    this.timer = setInterval(() => void this.save().catch((err) => this.log.error({ err: String(err) }, 'saving checkpoints failed')), intervalMs);
    this.timer.unref();
  }

  private closed = false;
  private abandoned = false;

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.quickTimer);
    this.quickTimer = undefined;
    await this.save();
    await this.slots?.close();
    markStopped(this.dir);
  }

  /**
   * Stops at once, as a kill -9 would (tests): nothing more is written, and a save under way is let
   * finish, so that what the state folder holds when this resolves is what the next run finds.
   */
  async abandon(): Promise<void> {
    this.closed = this.abandoned = true;
    clearInterval(this.timer);
    clearTimeout(this.quickTimer);
    this.quickTimer = undefined;
    await this.slots?.abandon();
    await this.saving;
  }

  /** Saves are serialised: a save never overtakes an earlier one. */
  save(): Promise<void> {
    return this.chain(() => this.write());
  }

  /** Runs `op` after every earlier save; a failed save (a full disk, for a while) does not stop the later ones. */
  private chain(op: () => Promise<void>): Promise<void> {
    const p = this.saving.then(op);
    this.saving = p.catch(() => {});
    return p;
  }

  private body(): string {
    const cutoff = Date.now() - RETAIN_MS;
    for (const [k, c] of this.entries) {
      if (c.updatedAt >= cutoff) continue;
      this.entries.delete(k);
      this.slots?.changed(k);
    }
    this.retiredList = this.retiredList.filter((c) => c.updatedAt >= cutoff);
    return JSON.stringify({ version: CHECKPOINT_VERSION, files: [...this.entries.values()], retired: this.retiredList });
  }

  private async write(): Promise<void> {
    if (!this.dirty || this.abandoned) return;
    this.dirty = false;
    this.unsaved = false;
    try {
      await this.slots?.sync();
      await writeFileDurably(this.dir, FILE, this.body());
    } catch (err) {
      this.dirty = true;
      this.unsaved = true;
      throw err;
    }
  }

  /** Not fsynced: `dirty` stays set for the next durable save. */
  private async writeQuick(): Promise<void> {
    if (!this.unsaved || this.abandoned) return;
    this.unsaved = false;
    try {
      await writeFileQuickly(this.dir, FILE, this.body());
    } catch (err) {
      this.unsaved = true;
      throw err;
    }
  }
}
