import type { Logger } from '../telemetry/log.js';
import { inodeKey } from './file-identity.js';
import { MAX_PAYLOAD, readSlots, SlotFile } from './slot-file.js';

const FILE = 'positions.slots';

/** What the slots hold of an entry: all but its path, which the JSON file keeps. */
interface Keyed {
  path: string;
  dev: number;
  ino: number;
}

/**
 * The checkpoint store's entries as they change, one slot each in `positions.slots`, written
 * synchronously at the end of the tick that changed them: after a kill -9, a restart repeats only
 * what was handed on in that tick, not the lines of the last quick save's interval. The JSON file
 * stays the whole table (paths, new files) and what a power loss falls back to; every change reaches
 * the slots first, so at load a valid slot is never older than the JSON entry of its file.
 */
export class SlotPositions<E extends Keyed> {
  private readonly pairs = new Map<string, number>();
  private readonly free: number[] = [];
  private next = 0;
  private readonly pending = new Set<string>();
  private scheduled = false;
  private failed = false;

  private constructor(
    private file: SlotFile,
    private readonly entries: Map<string, E>,
    private readonly log: Logger,
  ) {}

  /**
   * Lays the newest valid slot of each file over `entries` (files the JSON file does not know are
   * left out: their path is not in the slots), then starts a fresh slot file with one slot each.
   * `validate` checks a merged entry as the JSON file's entries are checked.
   */
  static async open<E extends Keyed>(dir: string, entries: Map<string, E>, validate: (e: unknown) => E | undefined, log: Logger): Promise<SlotPositions<E>> {
    const records = readSlots(dir, FILE);
    const newest = new Map<string, { seq: number; e: Record<string, unknown> }>();
    let lastSeq = 0;
    for (const r of records) {
      lastSeq = Math.max(lastSeq, r.seq);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(r.payload.toString()) as Record<string, unknown>;
      } catch {
        continue;
      }
      const key = inodeKey(e as unknown as Keyed);
      if ((newest.get(key)?.seq ?? -1) < r.seq) newest.set(key, { seq: r.seq, e });
    }
    for (const [key, { e }] of newest) {
      const known = entries.get(key);
      if (!known) continue;
      // Forgotten (deleted and read to its end, or not seen for long) after the JSON file was written.
      if (e.gone === true) {
        entries.delete(key);
        continue;
      }
      const merged = validate({ ...e, path: known.path });
      if (merged) entries.set(key, merged);
    }
    const keys = [...entries.keys()];
    const file = await SlotFile.create(dir, FILE, keys.map((k) => payloadOf(entries.get(k)!) ?? Buffer.alloc(0)), lastSeq);
    const slots = new SlotPositions(file, entries, log);
    keys.forEach((k, i) => slots.pairs.set(k, i));
    slots.next = keys.length;
    return slots;
  }

  /** The entry of `key` changed (or is gone): its slot is written before the event loop goes on. */
  changed(key: string): void {
    if (this.failed) return;
    this.pending.add(key);
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
        const [dev, ino] = key.split(':').map(Number);
        // Gone: a tombstone, so that the JSON file's entry (until its next save) is not used either.
        const payload = e ? payloadOf(e) : Buffer.from(JSON.stringify({ dev, ino, gone: true }));
        let pair = this.pairs.get(key);
        if (payload) {
          if (pair === undefined) {
            pair = this.free.pop() ?? this.next++;
            this.pairs.set(key, pair);
          }
          this.file.put(pair, payload);
        } else if (pair !== undefined) {
          // Too big for a slot: its JSON entry alone says where it is.
          this.file.clear(pair);
          this.pairs.delete(key);
          this.free.push(pair);
        }
      }
      this.pending.clear();
    } catch (err) {
      this.failed = true;
      this.pending.clear();
      this.log.error({ err: String(err) }, 'writing positions.slots failed; positions are saved in checkpoints.json alone');
      void this.file.discard();
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
    await this.file.close();
  }
}

function payloadOf(e: Keyed): Buffer | undefined {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { path, ...rest } = e;
  const b = Buffer.from(JSON.stringify(rest));
  return b.length <= MAX_PAYLOAD ? b : undefined;
}
