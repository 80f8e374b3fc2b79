import type { Batch, BatchBuffer, TakenBatch } from '../batch.js';

/**
 * The members of a pool share one buffer, and batches may be out with several of them at once
 * (round-robin; a member taken back while another still finishes what it holds). The buffer must
 * see hand-ons in order (sources commit positions there), and what a failed member gives back must
 * go out before anything newer, whichever member sends it. So: every batch taken gets a sequence
 * number; hand-ons reach the buffer in that order; given-back batches wait here, in that order, in
 * front of the buffer.
 */
export class PoolQueue {
  private readonly seqOf = new WeakMap<Batch, number>();
  /** The sequence number of the next batch taken from the buffer. */
  private nextSeq = 0;
  /** The smallest sequence number not handed on to the buffer yet. */
  private nextOut = 0;
  /** Handed on by a member, waiting for an earlier batch. */
  private readonly done = new Map<number, Batch>();
  /** Given back by members, in sequence order. */
  private retry: TakenBatch[] = [];

  constructor(private readonly buffer: BatchBuffer) {}

  take(): TakenBatch | undefined {
    const again = this.retry.shift();
    if (again) return again;
    const batch = this.buffer.take();
    if (batch) this.seqOf.set(batch, this.nextSeq++);
    return batch;
  }

  get hasRetry(): boolean {
    return this.retry.length > 0;
  }

  handedOn(batch: Batch): void {
    this.done.set(this.seq(batch), batch);
    for (let b = this.done.get(this.nextOut); b; b = this.done.get(this.nextOut)) {
      this.done.delete(this.nextOut++);
      this.buffer.handedOn(b);
    }
  }

  requeue(batches: Batch[]): void {
    for (const b of batches) {
      const seq = this.seq(b);
      let i = this.retry.length;
      while (i > 0 && this.seq(this.retry[i - 1]) > seq) i--;
      this.retry.splice(i, 0, b as TakenBatch);
    }
  }

  /**
   * Every member stopped: what is not handed on goes back to the buffer in order, for the next sink.
   * Batches a member wrote but that wait for an earlier one are sent again (duplicates, never a gap).
   */
  returnAll(): void {
    const all = [...this.retry, ...this.done.values()].sort((a, b) => this.seq(a) - this.seq(b));
    this.retry = [];
    this.done.clear();
    this.nextOut = this.nextSeq;
    this.buffer.requeue(all);
  }

  private seq(b: Batch): number {
    const seq = this.seqOf.get(b);
    if (seq === undefined) throw new Error('pool: a batch the pool did not hand out came back');
    return seq;
  }
}
