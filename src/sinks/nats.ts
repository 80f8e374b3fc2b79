import type { NatsConnection } from '@nats-io/transport-node';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { Stats } from '../telemetry/stats.js';
import type { BatchBuffer, TakenBatch } from '../batch.js';
import { defaultNumber } from '../config/options.js';
import { abortableDelay, Backoff } from './backoff.js';
import { Latch, Signal } from './signal.js';
import { AckInbox } from './nats-acks.js';
import { connectNats, describeServers, type NatsAccess } from './nats-connect.js';
import { natsMessages } from './nats-messages.js';
import type { Sink } from './sink.js';

/** The flags' defaults (src/config/options.ts), for a sink built without them. */
export const NATS_DEFAULTS = { window: defaultNumber('nats-window'), ackTimeoutMs: defaultNumber('nats-ack-timeout') };

export interface NatsSinkOptions {
  access: NatsAccess;
  subject: string;
  /** Messages published and not yet acknowledged by JetStream, at most. */
  window?: number;
  /** A publish not acknowledged within this long failed: its batch is published again (same ids). */
  ackTimeoutMs?: number;
  /** k8s-audit SD-ID whose params become headers; undefined for raw lines. */
  sdId?: string;
  stats: Stats;
  log: Logger;
  backoff?: Backoff;
  connectTimeoutMs?: number;
  reconnectMaxDelayMs?: number;
}

/** A batch out with JetStream: handed on once every message is published and acknowledged. */
interface Entry {
  batch: TakenBatch;
  unacked: number;
  issued: boolean;
  bytes: number;
}

/**
 * NATS JetStream: each message is published and counts as handed on only when JetStream
 * acknowledged it (stored on the stream's replicas); a batch is handed on, in order, when all its
 * messages are. A failed or unanswered publish gives back every batch not handed on, to be published
 * again after a backoff: with the same Nats-Msg-Id, so the stream drops what it already holds.
 */
export class NatsSink implements Sink {
  private readonly backoff: Backoff;
  private readonly limited: RateLimitedLog;
  private readonly wake = new Signal();
  private aborted = false;
  private wakeAbort: () => void = () => {};
  private readonly abortLatch = new Latch(new Promise<void>((resolve) => (this.wakeAbort = resolve)));
  private nc: NatsConnection | undefined;
  private acks: AckInbox | undefined;
  private readonly window: number;
  /**
   * After a failed publish, one message at a time until one is stored. With a window in flight, a
   * stream created meanwhile stored whichever messages reached it after it existed: the newest first
   * (CI: lines 498 and 499 ahead of 0 to 497), the older ones only when published again.
   */
  private probing = false;

  constructor(private readonly opts: NatsSinkOptions) {
    this.backoff = opts.backoff ?? new Backoff(200, opts.reconnectMaxDelayMs ?? 30_000);
    this.limited = new RateLimitedLog(opts.log);
    this.window = opts.window ?? NATS_DEFAULTS.window;
  }

  private get servers(): string {
    return describeServers(this.opts.access);
  }

  async run(buffer: BatchBuffer): Promise<void> {
    while (!this.aborted && !buffer.finished) {
      const nc = await this.connect();
      if (!nc) return;
      const acks = new AckInbox(nc, this.opts.subject, this.opts.ackTimeoutMs ?? NATS_DEFAULTS.ackTimeoutMs);
      this.acks = acks;
      try {
        while (!this.aborted && !nc.isClosed()) {
          const outcome = await this.pump(acks, buffer);
          if (outcome === 'finished') {
            await nc.close().catch(() => {});
            return;
          }
          if (outcome === 'aborted') return;
          await this.delay(this.backoff.next());
        }
      } finally {
        acks.close(new Error('connection closed'));
      }
    }
  }

  abort(): void {
    this.aborted = true;
    // What is still unanswered fails now, not at the ack timeout: its batches go back to the buffer.
    this.acks?.close(new Error('aborted'));
    void this.nc?.close().catch(() => {});
    this.wake.poke();
    this.wakeAbort();
  }

  private async connect(): Promise<NatsConnection | undefined> {
    const { stats, log } = this.opts;
    while (!this.aborted) {
      try {
        const nc = await connectNats(this.opts.access, { name: 'auditfwd', timeoutMs: this.opts.connectTimeoutMs ?? 10_000, reconnectMaxDelayMs: this.opts.reconnectMaxDelayMs ?? 30_000 });
        if (this.aborted) {
          await nc.close().catch(() => {});
          return undefined;
        }
        this.nc = nc;
        // Up, unless JetStream refused before (no stream): only an acknowledgement clears that.
        stats.drainConnected = stats.drainProblem === undefined;
        this.limited.clear('connect');
        log.info({ drain: this.servers, server: nc.getServer() }, 'connected to NATS');
        void this.watch(nc);
        return nc;
      } catch (err) {
        stats.drainConnected = false;
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        this.limited.warn('connect', { drain: this.servers, reason, attempt: this.backoff.attempts + 1 }, 'cannot connect to NATS; retrying');
        await this.delay(this.backoff.next());
      }
    }
    return undefined;
  }

  /** The client's own reconnects across the cluster, as the drain's state. */
  private async watch(nc: NatsConnection): Promise<void> {
    const { stats, log } = this.opts;
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        stats.drainConnected = false;
        this.limited.warn('disconnect', { drain: this.servers, server: s.server }, 'NATS connection lost; reconnecting');
      } else if (s.type === 'reconnect') {
        stats.reconnects++;
        stats.drainConnected = stats.drainProblem === undefined;
        log.info({ drain: this.servers, server: s.server }, 'reconnected to NATS');
      } else if (s.type === 'error') {
        this.limited.warn('nats-error', { drain: this.servers, reason: s.error.message }, 'NATS error');
      }
    }
  }

  /** Publishes batches until the buffer is finished, a publish fails, or the sink is aborted. */
  private async pump(acks: AckInbox, buffer: BatchBuffer): Promise<'finished' | 'failed' | 'aborted'> {
    const { stats, sdId } = this.opts;
    const out: Entry[] = [];
    let unacked = 0;
    let failure: unknown;
    const handOn = () => {
      while (out.length > 0 && out[0].issued && out[0].unacked === 0) {
        const { batch, bytes } = out.shift()!;
        stats.messagesSent += batch.count;
        stats.bytesSent += bytes;
        buffer.handedOn(batch);
      }
    };
    while (!this.aborted && failure === undefined) {
      const batch = buffer.take();
      if (!batch) {
        if (buffer.finished) return 'finished';
        await this.wake.waitOr(buffer.waitForData());
        continue;
      }
      const entry: Entry = { batch, unacked: 0, issued: false, bytes: 0 };
      out.push(entry);
      for (const m of natsMessages(batch, sdId)) {
        while (unacked >= (this.probing ? 1 : this.window) && failure === undefined && !this.aborted) await this.wake.wait();
        if (failure !== undefined || this.aborted) break;
        entry.unacked++;
        entry.bytes += m.body.length;
        unacked++;
        acks.publish(m, (err, duplicate, dropped) => {
          unacked--;
          if (err) failure ??= err;
          else {
            entry.unacked--;
            if (duplicate) stats.messagesResent++;
            if (dropped) this.tooLarge(m.body.length);
            else this.accepted();
            handOn();
          }
          this.wake.poke();
        });
      }
      entry.issued = failure === undefined && !this.aborted;
      handOn();
    }
    // Every answer is awaited (acks, failures, timeouts) before the rest goes back: a batch handed on is never also requeued.
    while (unacked > 0) await this.wake.wait();
    handOn();
    buffer.requeue(out.splice(0).map((e) => e.batch));
    if (this.aborted) return 'aborted';
    this.failed(failure);
    return 'failed';
  }

  private accepted(): void {
    const { stats } = this.opts;
    if (this.probing) {
      this.probing = false;
      this.wake.poke();
    }
    stats.lastSendMs = Date.now();
    if (stats.drainConnected && stats.drainProblem === undefined) return;
    stats.drainConnected = true;
    stats.drainProblem = undefined;
    this.limited.clear('publish');
    this.backoff.reset();
  }

  private tooLarge(bytes: number): void {
    this.opts.stats.addDropped('nats-max-payload', 1);
    this.limited.warn('max-payload', { drain: this.servers, bytes }, "message larger than the NATS server's max_payload; dropped (lower --max-message-bytes or raise max_payload)");
  }

  private failed(err: unknown): void {
    const { stats, subject } = this.opts;
    this.probing = true;
    const reason = err instanceof Error ? err.message : String(err);
    stats.drainConnected = false;
    stats.drainProblem = reason;
    this.limited.warn('publish', { drain: this.servers, subject, reason, attempt: this.backoff.attempts + 1 }, 'JetStream did not acknowledge; publishing again');
  }

  private delay(ms: number): Promise<void> {
    return abortableDelay(ms, this.abortLatch);
  }
}
