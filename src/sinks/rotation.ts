import type { Batch, BatchBuffer, TakenBatch } from '../batch.js';
import { Latch } from './signal.js';

/**
 * --reconnect-every: what a connection's protocol sees of the buffer. Once the connection is due to
 * be replaced, the buffer looks finished, so the protocol ends it as it ends at the end of input:
 * every frame written whole (TCP) or acknowledged (RELP), then a clean close. The connection then
 * opens a new one at once (and an L4 load balancer may pick another backend).
 */
export class RotatingView implements BatchBuffer {
  private due = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Raced at every wait for data, for as long as the connection lives. */
  private readonly dueLatch: Latch;

  constructor(
    private readonly inner: BatchBuffer,
    everyMs: number,
  ) {
    this.dueLatch = new Latch(new Promise<void>((resolve) => (this.wake = resolve)));
    // ±10%: a fleet started together does not reconnect together.
    this.timer = setTimeout(() => this.expire(), everyMs * (0.9 + Math.random() * 0.2));
    this.timer.unref();
  }

  /** True once the time is up and the buffer was not finished anyway. */
  get rotated(): boolean {
    return this.due && !this.inner.finished;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private expire(): void {
    this.due = true;
    this.wake?.();
  }

  push(batch: Batch): Promise<void> {
    return this.inner.push(batch);
  }
  take(): TakenBatch | undefined {
    return this.due ? undefined : this.inner.take();
  }
  waitForData(): Promise<void> {
    return this.due ? Promise.resolve() : this.dueLatch.race(this.inner.waitForData(), undefined);
  }
  handedOn(batch: Batch): void {
    this.inner.handedOn(batch);
  }
  requeue(batches: Batch[]): void {
    this.inner.requeue(batches);
  }
  backedUp(yes: boolean): void {
    this.inner.backedUp?.(yes);
  }
  close(): void {
    this.inner.close();
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  get finished(): boolean {
    return this.due || this.inner.finished;
  }
  get bytes(): number {
    return this.inner.bytes;
  }
  get fullSinceMs(): number | undefined {
    return this.inner.fullSinceMs;
  }
  get standby(): boolean | undefined {
    return this.inner.standby;
  }
}
