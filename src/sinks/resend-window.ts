import { readFileSync } from 'node:fs';
import { forEachFrame, frameEnd } from '../framing/octet.js';
import type { OwedFile } from './owed-file.js';
import { FileRing, MemoryRing, type Ring, type RingFileIo } from './resend-ring.js';

const MiB = 1024 * 1024;
/** Linux's own maxima of tcp_wmem and tcp_rmem (net/ipv4/tcp.c), where /proc does not say (not Linux). */
export const FALLBACK_BUFFERS = { send: 4 * MiB, receive: 6 * MiB };
/** `--tcp-resend-window auto` never holds more than this (memory: the window's size). */
export const AUTO_CEILING_BYTES = 64 * MiB;
/**
 * After the end of input, how many connections may be opened to send a lost connection's window:
 * a drain that resets every close (SO_LINGER 0, some load balancers) must not hold the exit forever.
 */
export const END_REPLAYS = 3;

/** The third field of /proc/sys/net/ipv4/tcp_[wr]mem: the most autotuning gives one socket's buffer. */
function procMax(name: string, read: (path: string) => string): number | undefined {
  try {
    const max = Number(read(`/proc/sys/net/ipv4/${name}`).trim().split(/\s+/)[2]);
    return Number.isSafeInteger(max) && max > 0 ? max : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What one connection can hold written and not yet read by the drain's application: our send
 * buffer (sent-but-unacknowledged bytes stay in it, so this covers the network too) plus the drain's
 * receive buffer. Both autotune up to this host's tcp_wmem and tcp_rmem maxima; the drain's own
 * maximum is unknown from here, this host's stands for it.
 */
export function kernelBuffers(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): { send: number; receive: number; from: 'proc' | 'fallback' } {
  const send = procMax('tcp_wmem', read);
  const receive = procMax('tcp_rmem', read);
  if (send === undefined || receive === undefined) return { ...FALLBACK_BUFFERS, from: 'fallback' };
  return { send, receive, from: 'proc' };
}

/**
 * `--tcp-resend-window auto`: what `connections` connections sending at once (a round-robin pool's
 * members; otherwise one) can hold in flight, at most AUTO_CEILING_BYTES.
 */
export function autoWindowBytes(connections: number, buffers = kernelBuffers()): number {
  return Math.min(AUTO_CEILING_BYTES, Math.max(1, connections) * (buffers.send + buffers.receive));
}

/**
 * Where the window's copies go. `failed`: the ring threw (a full disk under its file, EIO); the
 * window went on in memory, with what it held (`kept`) or without it (the file could not be read back).
 */
export interface WindowStore {
  open(capacity: number): Ring;
  failed(err: unknown, kept: boolean): void;
}

/** In memory: the window's size counts in the process's RSS. */
export const memoryStore: WindowStore = { open: (capacity) => new MemoryRing(capacity), failed: () => {} };

/**
 * In a file in `dir` (the spill's folder), kept by the page cache; in memory if the file cannot be
 * made (`failed` is told why, once) or fails later.
 */
export function fileStore(dir: string, failed: (err: unknown, kept: boolean) => void, io?: RingFileIo): WindowStore {
  return {
    open: (capacity) => {
      try {
        return new FileRing(capacity, dir, io);
      } catch (err) {
        failed(err, true);
        return new MemoryRing(capacity);
      }
    },
    failed,
  };
}

interface Entry {
  /** Where its whole frames lie, as positions in the stream of bytes ever kept (the ring offset is `% capacity`). */
  start: number;
  end: number;
  /**
   * Where every STRIDE-th frame started when it was recorded, from `origin`; how many frames it had
   * then, and the index of the first one still held (so it holds `frames - first`). Found while the frames are in the cache: walked
   * in the ring when the entry was trimmed, each frame's header was a cache miss (3.8 % of a raw
   * run's CPU, 360,000 frames a 500 MB run; bench/README.md, "The resend window's cost"). Every
   * frame's start was kept at first: those arrays outlived the young generation and their dead
   * copies waited for a full GC (+1.4 MB at the peak); one in 16 costs 100 bytes a batch.
   */
  starts: Int32Array;
  frames: number;
  first: number;
  /** Where its first byte was when recorded: `starts` count from there. */
  origin: number;
  /** The connection that carried them last (any object naming it: its socket). */
  carrier?: object;
  /** Its carrier was lost: to be sent again. */
  pending?: boolean;
  /** The replay that is to send it and has not yet. */
  replay?: Replay;
  /** Its frames, copied out of the ring before a trim while a replay still had to send them. */
  held?: Chunk;
}

export interface Chunk {
  frames: Buffer;
  count: number;
}

/**
 * A lost connection's frames, copied out of the window one entry (one batch) at a time into one
 * buffer as the new connection takes them, so that a replay holds one batch in memory, not the
 * window (36 MiB with `auto` here), nor leaves the GC that much to find. Entries that newer batches
 * trim meanwhile (a pool's other members go on sending) are copied out first, whole.
 */
export class Replay {
  private i = 0;
  private scratch = Buffer.alloc(0);
  constructor(
    private readonly window: ResendWindow,
    private readonly entries: Entry[],
    /** How many messages it sends (what it holds when taken). */
    readonly messages: number,
  ) {}

  /**
   * The next batch's frames to send (oldest first), or undefined at the end. They are valid until
   * the next call: the caller waits for the socket to have taken them first.
   */
  next(): Chunk | undefined {
    const chunk = this.take();
    // All of it is on the new connection: nothing is owed any more (unless another loss came).
    if (!chunk) this.window.keepOwed();
    return chunk;
  }

  private take(): Chunk | undefined {
    while (this.i < this.entries.length) {
      const e = this.entries[this.i++];
      // A later replay took it (the connection carrying this one was lost too).
      if (e.replay !== this) continue;
      e.replay = undefined;
      const held = e.held;
      e.held = undefined;
      if (held) return held;
      const length = e.end - e.start;
      if (this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.scratch.length));
      const chunk = this.window.copyOf(e, this.scratch);
      if (chunk) return chunk;
    }
    return undefined;
  }
}

/**
 * Plain TCP/TLS has no acknowledgement: a batch counts as handed on once the kernel took its bytes,
 * and a drain that dies takes with it what sat in both kernels' buffers (megabytes on a fast link).
 * The window keeps a copy of the last `maxBytes` of complete frames handed to a socket; after a
 * connection ends without auditfwd closing it, those it carried are sent first on the next
 * connection (to the same drain or another pool member). A drain that crashed loses nothing its
 * buffers held; one that survived sees at most `maxBytes` again (deduplicable on the content).
 * Only what the lost connection carried: a pool member on standby whose idle connection drops
 * causes no resend.
 *
 * Copies in one ring of `maxBytes`, made at the first batch: in a file in the spill's folder when
 * there is one (the page cache holds it, not the process), else in memory (its pages are touched as
 * it fills). A handed-on batch's memory goes back to its writer's slabs, and a copy per batch would
 * leave the GC tens of megabytes a second to find (measured: peak RSS grew by 2.4 times the window's size;
 * bench/resend-window.mjs). An entry never wraps around the ring's end: a batch that would is split
 * between two frames, so what is held is the last `maxBytes` less under two frames (the one that did
 * not fit at the end, the one cut at the start).
 */
export class ResendWindow {
  private ring: Ring | undefined;
  /** Bytes ever kept: where the next one goes. */
  private head = 0;
  private entries: Entry[] = [];
  private bytes = 0;

  private ending = false;
  private endReplays = 0;
  private gaveUp = false;

  /**
   * `onGiveUp`: called once when END_REPLAYS replays after the end of input did not get through.
   * `owedFile`: where what lost connections owe is kept until a new one took it (owed-file.ts); what an
   * earlier run left there is owed from the start, to go first on the first connection.
   */
  constructor(
    readonly maxBytes: number,
    private readonly onGiveUp?: () => void,
    private readonly store: WindowStore = memoryStore,
    private readonly owedFile?: OwedFile,
  ) {
    const earlier = owedFile?.read();
    if (earlier && maxBytes > 0) {
      this.record(earlier.frames, earlier.count, EARLIER_RUN);
      for (const e of this.entries) if (e.carrier === EARLIER_RUN) e.pending = true;
    }
  }

  /** Replaces what the owed file keeps with what lost connections owe now. */
  keepOwed(): void {
    this.owedFile?.write(this.owedChunks());
  }

  /** The frames owed, entry by entry, each in one buffer reused for the next (up to the window's size in all). */
  private *owedChunks(): Generator<Buffer> {
    let scratch = Buffer.alloc(0);
    for (const e of this.entries) {
      if (!e.pending && !e.replay) continue;
      if (e.held) {
        yield e.held.frames;
        continue;
      }
      const length = e.end - e.start;
      if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, 2 * scratch.length));
      const chunk = this.copyOf(e, scratch);
      if (chunk) yield chunk.frames;
    }
  }

  /**
   * One operation on the ring. One that throws moves the ring to memory, with its bytes read back,
   * and runs again there; if they cannot be read back, what the window held is dropped (the drain
   * has it, unless it dies now too) and the operation runs on an empty ring.
   */
  private onRing<T>(op: (ring: Ring) => T): T {
    try {
      return op(this.ring!);
    } catch (err) {
      const failing = this.ring!;
      let kept = true;
      try {
        this.ring = failing.inMemory();
      } catch {
        kept = false;
        this.ring = new MemoryRing(this.maxBytes);
        this.entries = [];
        this.bytes = 0;
      }
      try {
        failing.close();
      } catch {}
      this.store.failed(err, kept);
      return op(this.ring);
    }
  }

  /** The window's file, if any, is closed: the sink that used it is done. */
  close(): void {
    const ring = this.ring;
    this.ring = undefined;
    this.entries = [];
    this.bytes = 0;
    try {
      ring?.close();
    } catch {}
  }

  /** `frames` (octet-counted, `count` of them) were handed to the socket of `carrier`. */
  record(frames: Buffer, count: number, carrier?: object): void {
    const cap = this.maxBytes;
    if (cap === 0 || frames.length === 0) return;
    let data = { frames, count };
    if (frames.length > cap) {
      // Only its last frames are kept, and nothing older: kept, a frame still in the ring outside
      // what they overwrite would be sent again ahead of them, with the batch's first frames missing
      // in between (seen with a window smaller than a batch).
      data = tail(frames, frames.length - cap);
      // What a replay has still to send is copied out first, as a trim would.
      for (const e of this.entries) if (e.replay && !e.held) e.held = this.copyOf(e, Buffer.allocUnsafe(e.end - e.start));
      this.entries = [];
      this.bytes = 0;
    }
    this.ring ??= this.store.open(cap);
    while (data.count > 0) {
      const room = cap - (this.head % cap);
      const piece = data.frames.length <= room ? data : head(data.frames, room);
      if (piece.count === 0) {
        // Not even its first frame fits before the ring's end: start again at the beginning.
        this.makeRoom(this.head + room);
        this.head += room;
        continue;
      }
      const length = piece.frames.length;
      this.makeRoom(this.head + length);
      const at = this.head % cap;
      this.onRing((ring) => ring.write(piece.frames, at));
      this.entries.push({ start: this.head, end: this.head + length, carrier, ...frameStarts(piece.frames), first: 0, origin: this.head });
      this.head += length;
      this.bytes += length;
      data = { frames: data.frames.subarray(length), count: data.count - piece.count };
    }
  }

  /** The ring is about to hold bytes up to `newHead`: entries (whole frames of them) it overwrites go. */
  private makeRoom(newHead: number): void {
    const from = newHead - this.maxBytes;
    while (this.entries.length > 0 && this.entries[0].start < from) {
      const first = this.entries[0];
      if (first.replay && !first.held) {
        first.held = this.copyOf(first, Buffer.allocUnsafe(first.end - first.start));
        if (this.entries[0] !== first) return;
      }
      if (first.end <= from) {
        this.bytes -= first.end - first.start;
        this.entries.shift();
        continue;
      }
      // The first frame that starts at or after `from`: from the last noted start before it (or
      // the first frame held, if later), header by header.
      const { origin, starts } = first;
      let j = Math.floor(first.first / STRIDE);
      while (j + 1 < starts.length && origin + starts[j + 1] <= from) j++;
      let k = first.first;
      let at = first.start - origin;
      if (j * STRIDE > k) {
        k = j * STRIDE;
        at = starts[j];
      }
      const base = origin % this.maxBytes;
      while (k < first.frames && origin + at < from) {
        const header = base + at;
        at = this.onRing((ring) => ring.frameEnd(header)) - base;
        // The ring failed and its bytes could not be kept: every entry went with them.
        if (this.entries[0] !== first) return;
        k++;
      }
      if (k === first.frames) {
        this.bytes -= first.end - first.start;
        this.entries.shift();
        continue;
      }
      this.bytes -= origin + at - first.start;
      first.first = k;
      first.start = origin + at;
    }
  }

  /**
   * The entry's frames, copied to the start of `into` (the socket may still hold them when newer
   * batches overwrite the ring); undefined once it is no longer held (trimmed, or dropped with a
   * ring that failed).
   */
  copyOf(e: Entry, into: Buffer): Chunk | undefined {
    if (!this.entries.includes(e)) return undefined;
    const at = e.start % this.maxBytes;
    const length = e.end - e.start;
    this.onRing((ring) => ring.copyInto(at, length, into));
    return this.entries.includes(e) ? { frames: into.subarray(0, length), count: e.frames - e.first } : undefined;
  }

  /** `carrier` ended without auditfwd closing it: what it carried goes out again first. */
  lost(carrier?: object): void {
    let any = false;
    for (const e of this.entries) {
      if (e.carrier !== carrier) continue;
      e.pending = true;
      any = true;
    }
    if (any) this.keepOwed();
  }

  /** After a lost connection, what to send first on `carrier` (oldest first), once; else undefined. */
  takeReplay(carrier?: object): Replay | undefined {
    const out = this.entries.filter((e) => e.pending);
    if (out.length === 0) return undefined;
    if (this.ending) this.endReplays++;
    const replay = new Replay(this, out, out.reduce((n, e) => n + e.frames - e.first, 0));
    for (const e of out) {
      e.pending = false;
      e.carrier = carrier;
      e.replay = replay;
    }
    return replay;
  }

  /** A lost connection's frames wait for the next one. */
  get pending(): boolean {
    return this.entries.some((e) => e.pending);
  }

  /**
   * Asked once the input ended: a lost connection's window is still to be sent, at most END_REPLAYS
   * more times; then it is given up (onGiveUp) and the sink may finish.
   */
  owed(): boolean {
    this.ending = true;
    if (!this.pending) return false;
    if (this.endReplays < END_REPLAYS) return true;
    if (!this.gaveUp) {
      this.gaveUp = true;
      this.onGiveUp?.();
      // Given up here, it is not owed to the next run either: each would send it again at its end.
      this.owedFile?.write([]);
    }
    return false;
  }

  get heldBytes(): number {
    return this.bytes;
  }
}

/** The carrier of what an earlier run's owed file held. */
const EARLIER_RUN = {};

/** Every STRIDE-th frame's start is noted: a trim walks at most STRIDE - 1 headers in the ring. */
const STRIDE = 16;
let scratch = new Int32Array(64);

/** Where every STRIDE-th frame of `frames` starts (the first, the 17th…), and how many frames there are. */
function frameStarts(frames: Buffer): { starts: Int32Array; frames: number } {
  let n = 0;
  let i = 0;
  while (i < frames.length) {
    if (n % STRIDE === 0) {
      const j = n / STRIDE;
      if (j === scratch.length) {
        const grown = new Int32Array(2 * j);
        grown.set(scratch);
        scratch = grown;
      }
      scratch[j] = i;
    }
    n++;
    i = frameEnd(frames, i);
  }
  return { starts: scratch.slice(0, Math.ceil(n / STRIDE)), frames: n };
}

/** The whole frames of `frames` that start at or after byte `from`. */
function tail(frames: Buffer, from: number): { frames: Buffer; count: number } {
  let start = frames.length;
  let count = 0;
  let frameStart = 0;
  forEachFrame(frames, (_msgStart, end) => {
    if (start === frames.length && frameStart >= from) start = frameStart;
    if (start !== frames.length) count++;
    frameStart = end;
  });
  return { frames: frames.subarray(start), count };
}

/** The whole frames of `frames` that end at or before byte `limit`. */
function head(frames: Buffer, limit: number): { frames: Buffer; count: number } {
  let end = 0;
  let count = 0;
  while (end < frames.length) {
    const next = frameEnd(frames, end);
    if (next > limit) break;
    end = next;
    count++;
  }
  return { frames: frames.subarray(0, end), count };
}
