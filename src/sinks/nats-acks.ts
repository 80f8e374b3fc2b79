import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { NatsMessage } from './nats-messages.js';

/** Nobody answered the publish: no stream captures the subject (or JetStream is off). */
export class NoStreamError extends Error {
  constructor(subject: string) {
    super(`no JetStream stream captures subject ${subject} (or JetStream is not enabled)`);
  }
}

/** `dropped`: the message can never be published (larger than the server's max_payload). */
type Done = (err: Error | undefined, duplicate: boolean, dropped?: boolean) => void;

const SWEEP_MS = 100;

/**
 * JetStream publishes with their acknowledgements on one inbox subscription, told apart by the
 * reply subject's last token, and one timer for every timeout. Measured: nats.js' own
 * `jetstream().publish` (a request, a promise and a timer per message) cost about 4x the CPU.
 */
export class AckInbox {
  private readonly prefix = createInbox();
  private seq = 0;
  /** In publish order, so the sweep stops at the first one not yet due. */
  private readonly waiting = new Map<number, { done: Done; at: number }>();
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly timeoutMs: number,
  ) {
    this.sub = nc.subscribe(`${this.prefix}.*`, { callback: (_err, msg) => this.answer(msg) });
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  get pending(): number {
    return this.waiting.size;
  }

  publish(m: NatsMessage, done: Done): void {
    const id = ++this.seq;
    const h = natsHeaders();
    if (m.msgId !== undefined) h.set('Nats-Msg-Id', m.msgId);
    if (m.headers) for (const [k, v] of m.headers) h.set(k, v);
    this.waiting.set(id, { done, at: Date.now() });
    try {
      this.nc.publish(this.subject, m.body, { reply: `${this.prefix}.${id}`, headers: h });
    } catch (err) {
      // Sending it again would fail the same way, forever: it is dropped, counted and logged by the caller.
      if (/max_payload/.test((err as Error).message)) return this.settle(id, undefined, false, true);
      this.settle(id, err as Error, false);
    }
  }

  /** Every publish still waiting fails (the caller publishes its batch again). */
  close(reason: Error): void {
    clearInterval(this.timer);
    if (!this.sub.isClosed()) this.sub.unsubscribe();
    for (const id of [...this.waiting.keys()]) this.settle(id, reason, false);
  }

  private answer(msg: Msg): void {
    const id = Number(msg.subject.slice(this.prefix.length + 1));
    if (!this.waiting.has(id)) return; // timed out already: the publish is being sent again
    if (msg.headers?.code === 503) return this.settle(id, new NoStreamError(this.subject), false);
    let ack: { error?: { code?: number; err_code?: number; description?: string }; duplicate?: boolean };
    try {
      ack = msg.json();
    } catch {
      return this.settle(id, new Error('JetStream answered with something that is not an acknowledgement'), false);
    }
    if (ack.error) return this.settle(id, new Error(`JetStream refused: ${ack.error.description ?? 'error'} (${ack.error.err_code ?? ack.error.code})`), false);
    this.settle(id, undefined, ack.duplicate === true);
  }

  private sweep(): void {
    const due = Date.now() - this.timeoutMs;
    for (const [id, w] of this.waiting) {
      if (w.at > due) break;
      this.settle(id, new Error(`no acknowledgement within ${this.timeoutMs} ms`), false);
    }
  }

  private settle(id: number, err: Error | undefined, duplicate: boolean, dropped = false): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.done(err, duplicate, dropped);
  }
}
