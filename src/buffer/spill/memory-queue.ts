import type { Item } from './ledger.js';
import { Deque } from './order.js';

/** In the spill already: read back from it (its place), or given back with its copy there unread. */
export const durable = (i: Item): boolean => i.place !== undefined || i.covered;

/**
 * What the spill holds in memory, in stream order: batches the sink gave back (front), the queue
 * (read back from the spill, or not spilled at all), and the overflow, which comes after the spill:
 * batches that could not be written to it. `bytes` (Item.memory) also counts the batches out with the sink.
 */
export class MemoryQueue {
  private front: Item[] = [];
  private readonly queue = new Deque<Item>();
  private overflowed: Item[] = [];
  bytes = 0;
  overflowBytes = 0;
  out = 0;
  /** The batches out with the sink, in the order it took them. */
  readonly outItems = new Set<Item>();

  /** Batches the sink may take now. */
  get ready(): number {
    return this.front.length + this.queue.length;
  }
  get overflow(): readonly Item[] {
    return this.overflowed;
  }

  push(item: Item): void {
    this.queue.push(item);
    this.bytes += item.memory;
  }

  take(): Item | undefined {
    const item = this.front.length > 0 ? this.front.shift() : this.queue.shift();
    if (item) {
      this.out++;
      this.outItems.add(item);
    }
    return item;
  }

  handedOn(item: Item): void {
    this.out--;
    this.outItems.delete(item);
    this.bytes -= item.memory;
  }

  requeue(items: Item[]): void {
    this.out -= items.length;
    for (const item of items) this.outItems.delete(item);
    this.front = items.concat(this.front);
  }

  /** After the spill; `first`: before what overflowed earlier (it is older). */
  toOverflow(item: Item, first: boolean): void {
    if (first) this.overflowed.unshift(item);
    else this.overflowed.push(item);
    this.overflowBytes += item.memory;
    this.bytes += item.memory;
  }

  /** The first overflow batch was written to the spill. */
  written(): void {
    const item = this.overflowed.shift()!;
    this.overflowBytes -= item.memory;
    this.bytes -= item.memory;
  }

  /** The reader caught up with the spill: the overflow is next, and is in memory already. */
  overflowToQueue(): boolean {
    if (this.overflowed.length === 0) return false;
    for (const item of this.overflowed) this.queue.push(item);
    this.overflowed = [];
    this.overflowBytes = 0;
    return true;
  }

  /** Everything the sink may take, in order, out of the queue (still counted in `bytes`). */
  takeAll(): Item[] {
    const all = this.front.concat(this.queue.drain());
    this.front = [];
    return all;
  }

  /** Back after takeAll, in order, behind what the sink gave back meanwhile. */
  putBack(items: Item[]): void {
    for (const item of items) this.queue.push(item);
  }

  /** Something waits that is durable nowhere (not read back from the spill). */
  hasUndurable(): boolean {
    if (this.front.some((i) => !durable(i))) return true;
    for (let k = 0; k < this.queue.length; k++) if (!durable(this.queue.at(k)!)) return true;
    return false;
  }

  /** How long the oldest batch waiting that is durable nowhere has waited. */
  oldestWaitingMs(): number {
    let oldest = Infinity;
    for (const i of this.front) if (!durable(i)) oldest = Math.min(oldest, i.at);
    for (let k = 0; k < this.queue.length; k++) {
      const i = this.queue.at(k)!;
      if (!durable(i)) {
        oldest = Math.min(oldest, i.at);
        break;
      }
    }
    return oldest === Infinity ? 0 : Date.now() - oldest;
  }
}
