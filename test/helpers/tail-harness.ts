import { MemoryBuffer } from '../../src/buffer/memory.js';
import type { FrameWriter } from '../../src/framing/frame-writer.js';
import { forEachFrame } from '../../src/framing/octet.js';
import type { Logger } from '../../src/telemetry/log.js';
import { Stats } from '../../src/telemetry/stats.js';
import { FileTailer, type TailerOptions } from '../../src/sources/file/tailer.js';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import type { Encoder } from '../../src/transforms/encoder.js';

/** Frames the line as it is: the harness compares lines, not RFC 5424 headers. */
export class BareEncoder implements Encoder {
  beginBatch(): void {}
  encode(out: FrameWriter, line: Buffer): number {
    out.ascii(`${line.length} `);
    out.bytes(line);
    return 1;
  }
}

export interface LogEvent {
  level: string;
  msg: string;
  obj: Record<string, unknown>;
}

/** A Logger that records events so a test can await what the tailer did (instead of sleeping). */
export class RecordingLog {
  readonly events: LogEvent[] = [];
  private waiters: Array<{ from: number; pred: (e: LogEvent) => boolean; resolve: () => void }> = [];

  get logger(): Logger {
    const rec = (level: string) => (obj: unknown, msg?: string) => this.record(level, obj, msg);
    return { info: rec('info'), warn: rec('warn'), error: rec('error'), debug: rec('debug'), trace: rec('trace'), fatal: rec('fatal') } as unknown as Logger;
  }

  private record(level: string, obj: unknown, msg?: string): void {
    const e = typeof obj === 'string' ? { level, msg: obj, obj: {} } : { level, msg: msg ?? '', obj: (obj ?? {}) as Record<string, unknown> };
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves on the first event at or after index `from` that satisfies `pred`. */
  waitFor(from: number, pred: (e: LogEvent) => boolean): Promise<void> {
    if (this.events.slice(from).some(pred)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ from, pred, resolve }));
  }
}

/**
 * A tailer in-process, with a memory buffer and a consumer that hands every batch on at once (so
 * positions are committed as the real sink would), and a checkpoint store on disk.
 */
export class TailHarness {
  readonly delivered: string[] = [];
  readonly log = new RecordingLog();
  store!: CheckpointStore;
  private buffer!: MemoryBuffer;
  private tailer: FileTailer | undefined;
  private running: Promise<void> | undefined;
  private consumer: Promise<void> | undefined;
  private deliveryWaiters: Array<{ n: number; resolve: () => void }> = [];
  private idleWaiters: Array<() => void> = [];

  /** While set, the consumer hands nothing on: a drain that stopped reading (backpressure). */
  private paused: Promise<void> | undefined;
  private unpause: (() => void) | undefined;
  /** Killed: what is still read is neither delivered nor committed. */
  private dead = false;
  /** Lines of the last batch delivered. */
  private lastBatchLines = 0;
  /** Repeats the kills so far may cause: the last batch delivered before each (saved within its tick). */
  repeatAllowance = 0;

  constructor(
    readonly path: string,
    readonly stateDir: string,
    readonly opts: Partial<TailerOptions> = {},
    readonly bufferBytes = 64 * 1024,
    /** The tailer class: a test may load it with a module replaced (t.mockImport). */
    readonly Tailer: typeof FileTailer = FileTailer,
  ) {}

  pause(): void {
    this.paused ??= new Promise((resolve) => (this.unpause = resolve));
  }

  resume(): void {
    this.unpause?.();
    this.paused = this.unpause = undefined;
  }

  get isRunning(): boolean {
    return this.tailer !== undefined;
  }

  async start(): Promise<void> {
    this.store = await CheckpointStore.open(this.stateDir, this.log.logger);
    this.buffer = new MemoryBuffer(this.bufferBytes);
    this.consumer = this.consume(this.buffer);
    this.tailer = new this.Tailer(this.path, {
      encoder: new BareEncoder(),
      buffer: this.buffer,
      stats: new Stats(),
      checkpoints: this.store,
      log: this.log.logger,
      startAt: 'beginning',
      once: false,
      pollMs: 20,
      maxLineBytes: 64 * 1024,
      rotateWaitMs: 30,
      ...this.opts,
    });
    this.running = this.tailer.run();
  }

  /** Graceful stop: stop reading, hand on what was read, save positions (SIGTERM). */
  async stop(): Promise<void> {
    if (!this.tailer) return;
    this.resume();
    this.tailer.stop();
    await this.running;
    this.buffer.close();
    await this.consumer;
    await this.store.close();
    this.tailer = undefined;
  }

  /**
   * kill -9: nothing more is delivered, committed or saved (a batch held by a paused drain included);
   * the next start() finds the state folder as it is now.
   */
  async crash(): Promise<void> {
    if (!this.tailer) return;
    this.dead = true;
    this.repeatAllowance += this.lastBatchLines;
    await this.store.abandon();
    this.resume();
    this.tailer.stop();
    await this.running;
    this.buffer.close();
    await this.consumer;
    this.tailer = undefined;
    this.dead = false;
  }

  private async consume(buffer: MemoryBuffer): Promise<void> {
    for (;;) {
      await buffer.waitForData();
      let b;
      while ((b = buffer.take())) {
        if (this.paused) await this.paused;
        if (this.dead) {
          // Taken by a process that is gone: only the buffer's room is given back.
          b.onHandedOn = undefined;
          buffer.handedOn(b);
          continue;
        }
        const frames = b.frames;
        const before = this.delivered.length;
        forEachFrame(frames, (s, e) => this.delivered.push(frames.toString('latin1', s, e)));
        if (this.delivered.length > before) this.lastBatchLines = this.delivered.length - before;
        buffer.handedOn(b);
      }
      this.deliveryWaiters = this.deliveryWaiters.filter((w) => {
        if (this.delivered.length < w.n) return true;
        w.resolve();
        return false;
      });
      if (buffer.bytes === 0) for (const w of this.idleWaiters.splice(0)) w();
      if (buffer.finished) return;
    }
  }

  /** Resolves once `n` lines were delivered, or rejects after `ms` with how many came. */
  waitDelivered(n: number, ms = 5000): Promise<void> {
    if (this.delivered.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${n} lines; ${this.delivered.length} delivered`)), ms);
      this.deliveryWaiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** Lost and repeated line numbers, given lines that start with a number. */
export function tally(delivered: Iterable<number>, expected: number): { lost: number; repeated: number; outOfOrder: number } {
  const seen = new Uint8Array(expected);
  let repeated = 0;
  let outOfOrder = 0;
  let last = -1;
  for (const n of delivered) {
    if (n < 0 || n >= expected) continue;
    if (seen[n]) repeated++;
    else if (n < last) outOfOrder++;
    seen[n] = 1;
    last = Math.max(last, n);
  }
  let lost = 0;
  for (let i = 0; i < expected; i++) if (!seen[i]) lost++;
  return { lost, repeated, outOfOrder };
}
