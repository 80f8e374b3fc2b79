/**
 * The unit that flows from sources to sinks: the RFC 6587 octet-counted frames of the messages made
 * from a run of lines, and how to tell their source that they have been handed on.
 */
export interface Batch {
  /**
   * Names the batch for as long as it exists, across the spill and restarts: a sink that gets it
   * back as another object (read back from disk) matches its acknowledgements by it, never by its
   * bytes. The buffer gives one to every batch pushed without.
   */
  id?: number;
  frames: Buffer;
  count: number;
  /**
   * Called once, in order, when the frames are handed on: written to the drain's socket, durable in
   * the spill, or acknowledged by the drain. Sources commit their positions here and nowhere else.
   */
  onHandedOn?: () => void;
  /**
   * Called once, in order, when the frames and those of every batch before it are at least written
   * to the spill file (write() done, maybe no fsync yet) or handed on: what survives a kill -9 but not
   * a power loss. A source may record a position valid for this boot only here (never more than
   * that); onHandedOn still follows. A buffer without a spill never calls it.
   */
  onSpilled?: () => void;
  /**
   * Points inside the batch where a position may be committed before the whole batch is handed on:
   * `bytes[k]` is a frame boundary in `frames`, and `progress(k)` commits what precedes it. A sink
   * that writes the batch in those pieces reports each one (BatchBuffer.progress), so that a kill -9
   * repeats at most a piece, not the batch. Dropped by the spill (a record read back has none).
   */
  marks?: { bytes: number[]; progress: (k: number) => void };
  /**
   * Gives the memory of `frames` back for reuse (FrameWriter's slabs). The buffer calls it once
   * nothing will read them again: when handed on, or for a spilled batch as soon as it is written,
   * without waiting for the fsync. Never calling it is safe: the memory is then left to the GC.
   */
  release?: () => void;
  /**
   * The memory the batch keeps from being reused until it is released: its share of the slab it
   * was written in, the slab's unused end included (up to the batch's own size) when no other batch
   * will be written there.
   * --memory-max-bytes counts this, so that it bounds memory and not just frames (a 540 KB batch
   * alone in a 1 MiB slab holds the slab). `frames.length` when absent.
   */
  memory?: number;
  /** Which bytes of which source the lines came from: a dropped batch is reported by it. */
  origin?: { source: string; start: number; end: number };
  /**
   * Names each message the same way every time the same line is sent, across restarts and the
   * spill (a file's lines: its identity and each line's byte offset). A de-duplicating sink (NATS
   * JetStream's Nats-Msg-Id) uses them; set only when the sink asks for them.
   */
  keys?: MessageKeys;
  /**
   * The lines stay readable where the source read them until it commits them (a file it is catching
   * up on: its unread part is not growing). With memory full and a drain that is sending, the
   * source then waits for room rather than have the batch written to the spill and read back
   * (the spill's own writes and reads, on the disk the log is on, for nothing). Spilled all the same
   * when no room comes within --spill-fsync-interval.
   */
  canWait?: boolean;
}

/** Message i is `prefix + offsets[i]`; a line that made several messages repeats its offset. */
export interface MessageKeys {
  prefix: string;
  offsets: number[];
}

/**
 * Ids from the clock in microseconds, then counting: unique in a run, and larger than those of an
 * earlier run unless it made more than a million batches a second on average.
 */
let lastId = Date.now() * 1000;
export function nextBatchId(): number {
  return ++lastId;
}

/** What a batch counts against --memory-max-bytes. */
export const memoryOf = (batch: { frames: Buffer; memory?: number }): number => batch.memory ?? batch.frames.length;

/** A batch as a buffer hands it to the sink: with its id. */
export type TakenBatch = Batch & { id: number };

/**
 * What sits between sources and the sink. Sources `push` (which waits while the buffer is full: that
 * is the backpressure); the sink `take`s, and reports each batch as `handedOn` or gives it back with
 * `requeue` when the connection failed before it was written.
 */
export interface BatchBuffer {
  push(batch: Batch): Promise<void>;
  take(): TakenBatch | undefined;
  /** Resolves when `take` may return something, or the buffer is finished (or closed: check again). */
  waitForData(): Promise<void>;
  handedOn(batch: Batch): void;
  /**
   * The frames of `batch` up to its mark `k` are handed on (a sink writing it in pieces), every batch
   * before it too: the source may commit the position there. Optional: a buffer without it ignores marks.
   */
  progress?(batch: Batch, k: number): void;
  /** Puts batches back at the front, in the order given, for the next connection. */
  requeue(batches: Batch[]): void;
  /** No more pushes: once empty, the sink finishes. */
  close(): void;
  readonly closed: boolean;
  /** Closed, nothing queued and nothing out with the sink. */
  readonly finished: boolean;
  readonly bytes: number;
  /** A pool member's view while another member sends (failover standby, round-robin turn): take() gives nothing. */
  readonly standby?: boolean;
  /** The sink's connection is backed up (its socket's buffer full) or no longer: a round-robin pool deals to the others meanwhile. */
  backedUp?(yes: boolean): void;
  /** Since when a push has been waiting for room, or lines dropped (undefined: not full). /healthz and metrics read it. */
  readonly fullSinceMs?: number;
}
