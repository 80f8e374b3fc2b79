import type { Socket } from 'node:net';
import { forEachFrame } from '../framing/octet.js';
import { RateLimitedLog } from '../telemetry/log.js';
import type { BatchBuffer, TakenBatch } from '../batch.js';
import { SYSLOG_OVERHEAD, writeSyslogFrame } from './relp-protocol.js';
import { InFlight } from './relp-inflight.js';
import { RelpSession } from './relp-session.js';
import { Connection, KEEPALIVE_MS, type ConnectionOptions, type Outcome, type Protocol } from './connection.js';
import { defaultNumber } from '../config/options.js';
import { Latch, Signal } from './signal.js';

/** The flags' defaults (src/config/options.ts), for a sink built without them. */
export const RELP_DEFAULTS = {
  window: defaultNumber('relp-window'),
  ackTimeoutMs: defaultNumber('relp-ack-timeout'),
  maxRefusals: defaultNumber('relp-max-refusals'),
};

export interface RelpSinkOptions extends ConnectionOptions {
  /** Messages sent and not yet acknowledged, at most. */
  window?: number;
  /** With messages in flight, a drain silent for this long is taken as dead and reconnected. */
  ackTimeoutMs?: number;
  /** A message the drain refuses this many times is dropped (logged, counted). */
  maxRefusals?: number;
  /** relp_software offer. */
  software?: string;
  /** Shared by the members of a pool: what one acknowledged of a batch is not sent again by the next. */
  progress?: Map<number, RelpProgress>;
}

const UNSENT = 0;
const SENT = 1;
const DONE = 2;
/** One write gathers frames up to about this many bytes. */
const CHUNK_BYTES = 256 * 1024;
/** Room for CHUNK_BYTES plus the one message that crosses it, when that message is not huge. */
const POOLED_BYTES = 2 * CHUNK_BYTES;
const POOL_FROM_BYTES = 64 * 1024;
/** Write buffers kept for reuse: fresh large buffers cost page faults on every first touch. */
const POOL_MAX = 8;

/**
 * A batch's delivery state, kept across sessions so a resend skips what the drain already
 * acknowledged: only messages in flight at a failure are ever sent twice.
 */
class Progress {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  state: Uint8Array;
  done = 0;
  /** Next message to send on the current session. */
  next = 0;
  refusals: Map<number, number> | undefined;

  constructor(readonly batch: TakenBatch) {
    forEachFrame(batch.frames, (start, end) => {
      this.starts.push(start);
      this.ends.push(end);
    });
    this.state = new Uint8Array(this.starts.length);
  }

  /** What the drain already acknowledged of the same batch, given back earlier (maybe as another object). */
  resume(from: Saved): void {
    if (from.state.length !== this.count) return;
    this.state = from.state;
    this.done = from.done;
    this.refusals = from.refusals;
  }

  get count(): number {
    return this.starts.length;
  }

  get complete(): boolean {
    return this.done === this.count;
  }

  finish(i: number): void {
    if (this.state[i] === DONE) return;
    this.state[i] = DONE;
    this.done++;
  }
}

/** A returned batch's progress without its frames: the spill may free (or rewrite) those meanwhile. */
export type RelpProgress = Pick<Progress, 'state' | 'done' | 'refusals'>;
type Saved = RelpProgress;

/**
 * RELP: every message is kept until the drain acknowledges it (`rsp 200`), at most `window` of
 * them in flight. A batch is handed on (its source position committed) only when all its messages
 * are acknowledged, in order. After a failure, unacknowledged messages are sent again on the next
 * session. It is the protocol of a RelpSink's connection (backoff, reconnect, logs; TLS by `open`).
 */
export class RelpProtocol implements Protocol {
  private readonly window: number;
  private readonly ackTimeoutMs: number;
  private readonly maxRefusals: number;
  private readonly sessions = new WeakMap<Socket, RelpSession>();
  private readonly relpLog: RateLimitedLog;
  private session: RelpSession | undefined;
  private stopped = false;
  private readonly wakeup = new Signal();
  private readonly pool: Buffer[] = [];
  /**
   * Progress of batches given back after a failed session, by batch id: a spill may write a batch
   * to disk and hand it out again as a new object (even after a restart), which must not lose what
   * the drain acknowledged. Ids, not bytes: two batches of the same lines are different batches.
   * Unbounded, and small: a few bytes per message, removed when the batch comes back.
   */
  private readonly returned: Map<number, Saved>;

  constructor(private readonly opts: RelpSinkOptions) {
    this.returned = opts.progress ?? new Map();
    this.window = opts.window ?? RELP_DEFAULTS.window;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? RELP_DEFAULTS.ackTimeoutMs;
    this.maxRefusals = opts.maxRefusals ?? RELP_DEFAULTS.maxRefusals;
    this.relpLog = new RateLimitedLog(opts.log);
  }

  /** RELP `open` on a new connection; a refusal rejects, which the connection retries with its backoff. */
  async greet(sock: Socket, timeoutMs: number): Promise<void> {
    this.sessions.set(sock, await RelpSession.open(sock, timeoutMs, this.opts.software ?? 'auditfwd'));
  }

  abort(): void {
    this.stopped = true;
    this.session?.destroy();
    this.wakeup.poke();
  }

  async pump(sock: Socket, buffer: BatchBuffer): Promise<Outcome> {
    const session = this.sessions.get(sock);
    if (!session) throw new Error('RELP socket without a session');
    this.sessions.delete(sock);
    this.session = session;
    sock.setKeepAlive(true, this.opts.keepAliveMs ?? KEEPALIVE_MS);
    sock.setNoDelay(true);
    const { stats } = this.opts;
    /** Batches taken from the buffer and not handed on yet, in order. */
    const held: Progress[] = [];
    /** First held batch that may still have messages to send. */
    let cursor = 0;
    const inFlight = new InFlight<Progress>(this.window);
    let waitingSince = Date.now();
    let refused = false;
    let wakeRefused!: () => void;
    const refusedP = new Promise<void>((resolve) => (wakeRefused = resolve));
    // Raced at every wait of the session, which may live for days.
    const over = new Latch(Promise.race([session.ended, refusedP]));

    const settle = () => {
      while (held.length > 0 && held[0].complete) {
        const p = held.shift()!;
        if (cursor > 0) cursor--;
        buffer.handedOn(p.batch);
      }
    };

    session.onResponse = (txnr, rsp) => {
      const p = inFlight.take(txnr);
      if (!p) {
        session.fail(`response for unknown transaction ${txnr}`);
        return;
      }
      const i = inFlight.lastIndex;
      waitingSince = Date.now();
      if (rsp.code === 200) {
        p.finish(i);
        stats.messagesSent++;
        stats.lastSendMs = waitingSince;
      } else if (this.refuse(p, i, rsp.code, rsp.text)) {
        p.finish(i);
      } else {
        refused = true;
        wakeRefused();
      }
      settle();
      this.wakeup.poke();
    };

    const watchdog = setInterval(
      () => {
        if (inFlight.size > 0 && Date.now() - waitingSince > this.ackTimeoutMs) {
          session.fail(`no acknowledgement from drain for ${this.ackTimeoutMs} ms`);
        }
      },
      Math.max(10, Math.min(1000, this.ackTimeoutMs / 4)),
    );
    watchdog.unref();
    const drained = () => new Promise((resolve) => sock.once('drain', resolve));

    try {
      while (session.alive && !this.stopped && !refused && session.txnrsLeft > 0) {
        // Refilled as soon as any answer frees room. Waiting for more room (to write in bigger
        // pieces) stalls against librelp: its small answers sit behind Nagle until our delayed ACK,
        // 40 ms each round (measured: 30× slower at window 64).
        if (inFlight.size >= this.window || !inFlight.hasRoomFor(session.upcomingTxnr)) {
          await over.race(this.wakeup.wait(), undefined);
          continue;
        }
        while (cursor < held.length && held[cursor].next >= held[cursor].count) cursor++;
        let p = held[cursor];
        if (!p) {
          const batch = buffer.take();
          if (!batch) {
            if (buffer.finished) {
              await session.close(this.ackTimeoutMs);
              return 'finished';
            }
            // Acknowledgements settle batches by themselves; the last one wakes this with `finished`.
            await over.race(buffer.waitForData(), undefined);
            continue;
          }
          p = new Progress(batch);
          const saved = this.returned.get(batch.id);
          if (saved) {
            this.returned.delete(batch.id);
            p.resume(saved);
          }
          held.push(p);
          settle();
          continue;
        }
        if (inFlight.size === 0) waitingSince = Date.now();
        const chunk = this.frames(session, p, this.window - inFlight.size, inFlight);
        if (chunk.length === 0) continue;
        stats.bytesSent += chunk.length;
        if (!this.writePooled(session, chunk)) await over.race(drained(), undefined);
      }
      // A refusal ends the session gracefully: `close` is answered after every earlier message, so
      // what the drain took is known and only refused (and unanswered) messages go out again.
      // Running out of transaction numbers ends it the same way.
      if (session.alive && !this.stopped) {
        if (!refused) this.opts.log.info({ drain: `${this.opts.host}:${this.opts.port}` }, 'RELP session used all transaction numbers; starting a new one');
        await session.close(this.ackTimeoutMs);
      } else if (session.endReason && !this.stopped) {
        this.relpLog.warn('end', { drain: `${this.opts.host}:${this.opts.port}`, reason: session.endReason, unacknowledged: inFlight.size }, 'RELP session ended');
      }
      return this.stopped ? 'aborted' : 'lost';
    } finally {
      clearInterval(watchdog);
      session.onResponse = () => {};
      session.destroy();
      this.session = undefined;
      for (const p of held) this.remember(p);
      buffer.requeue(held.map((p) => p.batch));
    }
  }

  /** Frames for the next unacknowledged messages of `p`, at most `room` of them. */
  private frames(session: RelpSession, p: Progress, room: number, inFlight: InFlight<Progress>): Buffer {
    const src = p.batch.frames;
    const first = session.upcomingTxnr;
    let bytes = 0;
    let n = 0;
    let i = p.next;
    for (; i < p.count && n < room && bytes < CHUNK_BYTES && inFlight.hasRoomFor(first + n); i++) {
      if (p.state[i] === DONE) continue;
      bytes += p.ends[i] - p.starts[i] + SYSLOG_OVERHEAD;
      n++;
    }
    const end = i;
    // A free pooled buffer takes any piece, a window refilled by a few answers too: fresh small
    // pieces were garbage for malloc and for Node's pool of small buffers. With the pool empty, only
    // a large piece is worth a new pooled buffer.
    const pooled = bytes <= POOLED_BYTES && (bytes >= POOL_FROM_BYTES || this.pool.length > 0);
    const out = pooled ? (this.pool.pop() ?? Buffer.allocUnsafe(POOLED_BYTES)) : Buffer.allocUnsafe(bytes);
    let o = 0;
    for (i = p.next; i < end; i++) {
      if (p.state[i] === DONE) continue;
      if (p.state[i] === SENT) this.opts.stats.messagesResent++;
      p.state[i] = SENT;
      const txnr = session.takeTxnr();
      inFlight.set(txnr, p, i);
      o = writeSyslogFrame(out, o, txnr, src, p.starts[i], p.ends[i]);
    }
    p.next = end;
    return out.subarray(0, o);
  }

  private remember(p: Progress): void {
    if (p.state.every((s) => s === UNSENT)) return;
    this.returned.set(p.batch.id, { state: p.state, done: p.done, refusals: p.refusals });
  }

  /**
   * Writes a chunk made by frames(); its backing buffer goes back to the pool once the socket is
   * done with it. That is at once when the kernel took the whole chunk during the write (nothing is
   * left queued on the socket: Node keeps no reference then), else at the write's callback, which
   * Node defers to the next tick even for a write that is complete. A window refilled in one go
   * then reuses one buffer, where each of its chunks took a buffer of its own (6 of 512 KiB at peak).
   */
  private writePooled(session: RelpSession, chunk: Buffer): boolean {
    const backing = chunk.byteOffset === 0 && chunk.buffer.byteLength === POOLED_BYTES ? Buffer.from(chunk.buffer, 0, POOLED_BYTES) : undefined;
    if (!backing) return session.write(chunk);
    let back = false;
    const giveBack = () => {
      if (back) return;
      back = true;
      if (this.pool.length < POOL_MAX) this.pool.push(backing);
    };
    const ok = session.write(chunk, giveBack);
    if (session.queuedBytes === 0) giveBack();
    return ok;
  }

  /** Returns true when the refused message is given up on. */
  private refuse(p: Progress, i: number, code: number, text: string): boolean {
    this.opts.stats.messagesRefused++;
    const n = (p.refusals?.get(i) ?? 0) + 1;
    (p.refusals ??= new Map()).set(i, n);
    const drain = `${this.opts.host}:${this.opts.port}`;
    if (n >= this.maxRefusals) {
      this.opts.stats.addDropped('relp-refused', 1);
      this.relpLog.warn('dropped', { drain, code, reply: text, refusals: n }, 'drain refused a message too often; dropped it');
      return true;
    }
    this.relpLog.warn('refused', { drain, code, reply: text, refusals: n }, 'drain refused a message; sending it again on a new session');
    return false;
  }
}

/** A RELP drain: a connection (over TCP or TLS) that speaks RELP. */
export class RelpSink extends Connection {
  constructor(opts: RelpSinkOptions) {
    super(opts, new RelpProtocol(opts));
  }
}
