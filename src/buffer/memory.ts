import { memoryOf, nextBatchId, type Batch, type BatchBuffer, type TakenBatch } from '../batch.js';

/**
 * A FIFO of batches bounded in bytes of memory (Batch.memory). Bytes count from `push` until the
 * sink reports the batch handed on, so the budget covers what is queued and what is in flight on the socket.
 */
export class MemoryBuffer implements BatchBuffer {
  private queue: Batch[] = [];
  private head = 0;
  private used = 0;
  private held = 0;
  private out = 0;
  private isClosed = false;
  private roomWaiters: Array<() => void> = [];
  private dataWaiters: Array<() => void> = [];
  fullSinceMs: number | undefined;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }
  /** Messages pushed and not yet handed on (queued or out with the sink). */
  get messages(): number {
    return this.held;
  }
  get length(): number {
    return this.queue.length - this.head;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  get finished(): boolean {
    return this.isClosed && this.length === 0 && this.out === 0;
  }

  async push(batch: Batch): Promise<void> {
    // A batch larger than the whole budget is still let in when nothing else is held, or it
    // could never pass.
    while (this.used > 0 && this.used + memoryOf(batch) > this.maxBytes) {
      this.fullSinceMs ??= Date.now();
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    // Still full while other sources wait for room: /healthz must not flap between them.
    if (this.roomWaiters.length === 0) this.fullSinceMs = undefined;
    batch.id ??= nextBatchId();
    this.used += memoryOf(batch);
    this.held += batch.count;
    this.queue.push(batch);
    this.wake(this.dataWaiters);
  }

  take(): TakenBatch | undefined {
    if (this.head >= this.queue.length) return undefined;
    const batch = this.queue[this.head++] as TakenBatch;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.out++;
    return batch;
  }

  waitForData(): Promise<void> {
    if (this.length > 0 || this.finished) return Promise.resolve();
    return new Promise((resolve) => this.dataWaiters.push(resolve));
  }

  handedOn(batch: Batch): void {
    this.out--;
    this.used -= memoryOf(batch);
    this.held -= batch.count;
    batch.onHandedOn?.();
    batch.release?.();
    this.wake(this.roomWaiters);
    if (this.finished) this.wake(this.dataWaiters);
  }

  progress(batch: Batch, k: number): void {
    // The sink hands batches on in order: everything before this one was, so its commits ran.
    batch.marks?.progress(k);
  }

  requeue(batches: Batch[]): void {
    if (batches.length === 0) return;
    this.out -= batches.length;
    this.queue = batches.concat(this.queue.slice(this.head));
    this.head = 0;
    this.wake(this.dataWaiters);
  }

  close(): void {
    this.isClosed = true;
    this.wake(this.dataWaiters);
  }

  private wake(waiters: Array<() => void>): void {
    if (waiters.length === 0) return;
    const all = waiters.splice(0);
    for (const w of all) w();
  }
}
