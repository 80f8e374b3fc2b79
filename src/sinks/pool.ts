import type { Batch, BatchBuffer, TakenBatch } from '../batch.js';
import type { Logger } from '../telemetry/log.js';
import { MemberStats, type SinkStats, type Stats } from '../telemetry/stats.js';
import { PoolQueue } from './pool-queue.js';
import type { Sink } from './sink.js';
import { Signal } from './signal.js';

export type PoolMode = 'failover' | 'round-robin';

interface Member {
  name: string;
  sink: Sink;
  stats: MemberStats;
  view: MemberView;
  done: boolean;
  /** Its socket's buffer is full: round-robin passes its turn on. */
  backedUp?: boolean;
}

/**
 * Several drains of one transport (`--to` given more than once). Each member is a sink of its own
 * (connection, backoff, health) over a view of the one buffer; the pool decides which members may
 * take batches: failover, the first connected member in the order given (a member that comes back
 * is taken back); round-robin, the connected members in turn, a batch each, passing over a member
 * whose socket is backed up (a slow drain does not set the pace of the others). A member that fails
 * gives back what it had not delivered (not written for TCP, not acknowledged for RELP); the next
 * member that sends takes it first, in order (PoolQueue).
 */
export class PoolSink implements Sink {
  private readonly members: Member[];
  private readonly changed = new Signal();
  private queue!: PoolQueue;
  private shared!: BatchBuffer;
  private turn = 0;
  private active: Member | undefined;
  private wakeFinished: (() => void) | undefined;

  constructor(
    specs: Array<{ name: string; make: (stats: SinkStats) => Sink }>,
    readonly mode: PoolMode,
    private readonly stats: Stats,
    private readonly log: Logger,
    /** Something is still to be sent though the buffer is finished (the members' shared resend window). */
    private readonly owes: () => boolean = () => false,
  ) {
    this.members = specs.map((spec) => {
      const m = { name: spec.name, done: false } as Member;
      m.stats = new MemberStats(stats, () => this.refresh());
      stats.members.set(spec.name, m.stats);
      m.view = new MemberView(this, m);
      m.sink = spec.make(m.stats);
      return m;
    });
  }

  async run(buffer: BatchBuffer): Promise<void> {
    this.shared = buffer;
    this.queue = new PoolQueue(buffer);
    const finished = new Promise<void>((resolve) => (this.wakeFinished = resolve));
    const runs = this.members.map((m) =>
      m.sink.run(m.view).finally(() => {
        m.done = true;
        this.refresh();
      }),
    );
    await Promise.race([Promise.all(runs), finished]);
    // The buffer is finished: members still trying to connect have nothing left to send. Connected
    // ones end by themselves: cut short, a close waiting for the drain's would not be confirmed.
    for (const m of this.members) if (!m.done && !m.stats.drainConnected) m.sink.abort();
    await Promise.all(runs);
    this.queue.returnAll();
  }

  abort(): void {
    for (const m of this.members) m.sink.abort();
    this.changed.poke();
  }

  /** A member connected or disconnected, or finished: who sends now. */
  refresh(): void {
    const up = this.members.filter((m) => m.stats.drainConnected && !m.done);
    this.stats.drainConnected = up.length > 0;
    const active = this.mode === 'failover' ? up[0] : undefined;
    if (this.mode === 'failover' && active !== this.active) {
      if (active) this.log.info({ drain: active.name, previous: this.active?.name }, 'pool: sending to this member');
      else this.log.warn({ members: this.members.length }, 'pool: no member connected');
      this.active = active;
    }
    for (const m of this.members) m.stats.state = !up.includes(m) ? 'down' : active && m !== active ? 'standby' : 'active';
    if (this.finished) this.wakeFinished?.();
    this.changed.poke();
  }

  standby(m: Member): boolean {
    if (!m.stats.drainConnected || m.done) return true;
    if (this.mode === 'failover') return m !== this.active;
    return this.turnMember() !== m;
  }

  /** Round-robin: whose turn it is, skipping members that are down, and backed-up ones unless all are. */
  private turnMember(): Member | undefined {
    let first: Member | undefined;
    for (let k = 0; k < this.members.length; k++) {
      const m = this.members[(this.turn + k) % this.members.length];
      if (!m.stats.drainConnected || m.done) continue;
      if (!m.backedUp) return m;
      first ??= m;
    }
    return first;
  }

  backedUp(m: Member, yes: boolean): void {
    m.backedUp = yes;
    if (this.mode === 'round-robin') this.refresh();
  }

  take(m: Member): TakenBatch | undefined {
    if (this.standby(m)) return undefined;
    const batch = this.queue.take();
    if (batch && this.mode === 'round-robin') {
      this.turn = (this.members.indexOf(m) + 1) % this.members.length;
      this.refresh();
    }
    return batch;
  }

  /** Nothing left to take, and no lost connection's window still to send: the members may stop. */
  get finished(): boolean {
    return this.shared?.finished && !this.owes();
  }

  waitForData(m: Member): Promise<void> {
    if (this.shared.finished && !this.finished) return this.changed.wait();
    if (this.standby(m) && !this.shared.finished) return this.changed.wait();
    if (this.queue.hasRetry || this.shared.finished) return Promise.resolve();
    return this.changed.waitOr(this.shared.waitForData());
  }

  handedOn(batch: Batch): void {
    this.queue.handedOn(batch);
    if (this.shared.finished) this.refresh();
  }

  requeue(batches: Batch[]): void {
    this.queue.requeue(batches);
    this.changed.poke();
  }

  get buffer(): BatchBuffer {
    return this.shared;
  }
}

/** What one member sees of the buffer: batches only while the pool lets it send. */
class MemberView implements BatchBuffer {
  constructor(
    private readonly pool: PoolSink,
    private readonly member: Member,
  ) {}

  push(batch: Batch): Promise<void> {
    return this.pool.buffer.push(batch);
  }
  take(): TakenBatch | undefined {
    return this.pool.take(this.member);
  }
  waitForData(): Promise<void> {
    return this.pool.waitForData(this.member);
  }
  handedOn(batch: Batch): void {
    this.pool.handedOn(batch);
  }
  requeue(batches: Batch[]): void {
    this.pool.requeue(batches);
  }
  backedUp(yes: boolean): void {
    this.pool.backedUp(this.member, yes);
  }
  close(): void {
    this.pool.buffer.close();
  }
  get closed(): boolean {
    return this.pool.buffer.closed;
  }
  get finished(): boolean {
    return this.pool.finished;
  }
  get bytes(): number {
    return this.pool.buffer.bytes;
  }
  get fullSinceMs(): number | undefined {
    return this.pool.buffer.fullSinceMs;
  }
  get standby(): boolean {
    return this.pool.standby(this.member);
  }
}
