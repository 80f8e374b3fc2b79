import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../telemetry/log.js';
import { inodeKey } from './file-identity.js';
import { MAX_PAYLOAD, readSlots, SlotFile } from './slot-file.js';

const FILE = 'positions.slots';

/** What the slots hold of an entry: all of it, its path only when it fits (else the JSON file's is taken). */
interface Keyed {
  path: string;
  dev: number;
  ino: number;
  fpLen: number;
  fp: string;
}

/** What a load found in the slots, to be known before the slot file is started afresh. */
export interface SlotsLoaded<E> {
  lastSeq: number;
  /** Entries retired since checkpoints.json was written (oldest first): the JSON file does not list them as such. */
  retired: E[];
}

const sameFile = (a: Keyed, b: Keyed) => a.dev === b.dev && a.ino === b.ino && a.fpLen === b.fpLen && a.fp === b.fp;

/**
 * The checkpoint store's entries as they change, one slot each in `positions.slots`, written
 * synchronously at the end of the tick that changed them: after a kill -9, a restart repeats only
 * what was handed on in that tick, not the lines of the last quick save's interval. The JSON file
 * stays the whole table (paths, new files, retired files) and what a power loss falls back to; every
 * change reaches the slots first, so at load a valid slot is never older than the JSON entry of its
 * file. A slot holds one of: the entry; `gone: true` (forgotten); the entry with `gone: "retired"`
 * (the file is gone, kept as retired: a .gz of it is known by it).
 */
export class SlotPositions<E extends Keyed> {
  private readonly pairs = new Map<string, number>();
  private readonly free: number[] = [];
  private next = 0;
  private readonly pending = new Set<string>();
  /** Of the pending keys, those whose entry was retired: that entry. */
  private readonly retiring = new Map<string, E>();
  private scheduled = false;
  private failed = false;

  private constructor(
    private file: SlotFile,
    private readonly entries: Map<string, E>,
    private readonly log: Logger,
  ) {}

  /**
   * Lays the newest valid slot of each file over `entries` (files the JSON file does not know are
   * left out: their path is not in the slots). `validate` checks a merged entry as the JSON file's
   * entries are checked; `replaced(prev, next)`: `next` is another file than `prev` on its inode, so
   * `prev` was retired (a commit of another file there, then a kill -9 before the JSON file said so).
   * The retired entries found are returned, for the JSON file to list before the slots start afresh.
   */
  static load<E extends Keyed>(dir: string, entries: Map<string, E>, validate: (e: unknown) => E | undefined, replaced: (prev: E, next: E) => boolean): SlotsLoaded<E> {
    const byKey = new Map<string, Array<{ seq: number; e: Record<string, unknown> }>>();
    let lastSeq = 0;
    for (const r of readSlots(dir, FILE)) {
      lastSeq = Math.max(lastSeq, r.seq);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(r.payload.toString()) as Record<string, unknown>;
      } catch {
        continue;
      }
      const key = inodeKey(e as unknown as Keyed);
      byKey.set(key, [...(byKey.get(key) ?? []), { seq: r.seq, e }]);
    }
    const retired: Array<{ seq: number; c: E }> = [];
    for (const [key, records] of byKey) {
      const known = entries.get(key);
      if (!known) continue;
      records.sort((a, b) => a.seq - b.seq);
      // Every retirement the slots still hold (a pair keeps the last two records of its file).
      const found: Array<{ seq: number; c: E }> = [];
      for (const { seq, e } of records) {
        const c = e.gone === 'retired' ? validate({ ...e, path: pathOf(e, known) }) : undefined;
        if (c) found.push({ seq, c });
      }
      const { e } = records[records.length - 1];
      const last = e.gone === true ? undefined : e.gone === 'retired' ? found[found.length - 1]?.c : validate({ ...e, path: pathOf(e, known) });
      if (e.gone !== undefined) entries.delete(key);
      else if (last) entries.set(key, last);
      // The file the JSON entry names was retired for another one (its own retirement record
      // overwritten since, or written in the same tick): it is retired as the JSON file had it.
      if (last && replaced(known, last) && !found.some(({ c }) => sameFile(c, known))) found.unshift({ seq: -1, c: known });
      retired.push(...found);
    }
    retired.sort((a, b) => a.seq - b.seq);
    return { lastSeq, retired: retired.map(({ c }) => c) };
  }

  /** Starts a fresh slot file under the JSON file's `entries` (as load left them), one slot each. */
  static async open<E extends Keyed>(dir: string, entries: Map<string, E>, lastSeq: number, log: Logger): Promise<SlotPositions<E>> {
    const keys = [...entries.keys()];
    // Copied: each payloadOf overwrites the last one.
    const file = await SlotFile.create(dir, FILE, keys.map((k) => Buffer.from(payloadOf(entries.get(k)!) ?? '')), lastSeq);
    const slots = new SlotPositions(file, entries, log);
    keys.forEach((k, i) => slots.pairs.set(k, i));
    slots.next = keys.length;
    return slots;
  }

  /** A slot file that could not be started: its records, older than what the JSON file will say, must not be read back. */
  static remove(dir: string): void {
    rmSync(join(dir, FILE), { force: true });
  }

  /**
   * The entry of `key` changed (or is gone; `retired`: it was retired, as it was then): its slot is
   * written before the event loop goes on.
   */
  changed(key: string, retired?: E): void {
    if (this.failed) return;
    this.pending.add(key);
    if (retired) this.retiring.set(key, retired);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Writes what changed since the last flush. */
  flush(): void {
    this.scheduled = false;
    if (this.failed) return;
    try {
      for (const key of this.pending) {
        const e = this.entries.get(key);
        const was = this.retiring.get(key);
        const [dev, ino] = key.split(':').map(Number);
        // Retired: written first, so that with another file's entry written after it (a commit that
        // retired the one before) the pair holds both.
        if (was) this.put(key, payloadOf(was, 'retired'));
        // Gone: a tombstone, so that the JSON file's entry (until its next save) is not used either.
        if (e || !was) this.put(key, e ? payloadOf(e) : written(JSON.stringify({ dev, ino, gone: true })));
      }
      this.pending.clear();
      this.retiring.clear();
    } catch (err) {
      this.failed = true;
      this.pending.clear();
      this.retiring.clear();
      this.log.error({ err: String(err) }, 'writing positions.slots failed; positions are saved in checkpoints.json alone');
      void this.file.discard();
    }
  }

  private put(key: string, payload: Buffer | undefined): void {
    let pair = this.pairs.get(key);
    if (payload) {
      if (pair === undefined) {
        pair = this.free.pop() ?? this.next++;
        this.pairs.set(key, pair);
      }
      this.file.put(pair, payload);
    } else if (pair !== undefined) {
      // Too big for a slot: its JSON entry alone says where it is (a little earlier).
      this.file.clear(pair);
      this.pairs.delete(key);
      this.free.push(pair);
    }
  }

  /** Ahead of a durable save of the JSON file: the slots on disk are then never older than it. */
  async sync(): Promise<void> {
    this.flush();
    await this.file.sync();
  }

  async close(): Promise<void> {
    this.flush();
    await this.file.close();
  }

  /** Stops writing, what changed in this tick included: a kill -9 before the flush (tests). */
  async abandon(): Promise<void> {
    this.failed = true;
    this.pending.clear();
    this.retiring.clear();
    await this.file.close();
  }
}

/**
 * The entry as a slot payload: with its path when it fits, so that another file on a known inode
 * (one path's file deleted, its inode number given to another path's) is not given the old one's
 * path at load; undefined when too big even without it (a v2 entry takes at most 218 bytes, 235
 * retired, and 366 and 383 with a soft position, measured with 2^53-1 numbers: under MAX_PAYLOAD).
 * A view of one buffer, valid until the next call (SlotFile.put copies it): a payload per commit
 * from Node's pool of small buffers kept those pools alive into the old generation, where they
 * piled up until a full collection.
 */
function payloadOf(e: Keyed, gone?: 'retired'): Buffer | undefined {
  const whole = JSON.stringify(gone ? { ...e, gone } : e);
  if (Buffer.byteLength(whole) <= MAX_PAYLOAD) return written(whole);
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { path, ...rest } = e;
  const text = JSON.stringify(gone ? { ...rest, gone } : rest);
  return Buffer.byteLength(text) <= MAX_PAYLOAD ? written(text) : undefined;
}

const scratch = Buffer.allocUnsafeSlow(MAX_PAYLOAD);
const written = (text: string): Buffer => scratch.subarray(0, scratch.write(text));

const pathOf = (e: Record<string, unknown>, known: Keyed) => (typeof e.path === 'string' ? e.path : known.path);
