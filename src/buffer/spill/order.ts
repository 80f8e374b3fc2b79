/** A FIFO with O(1) shift: an array and a head index, compacted now and then. */
export class Deque<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  at(i: number): T | undefined {
    return this.items[this.head + i];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  /** Empties the deque and returns what it held, in order. */
  drain(): T[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return all;
  }
}

export interface Ticket {
  done: boolean;
  readonly run: () => void;
}

/**
 * Calls callbacks in the order they were registered, each once, however their batches finish: a
 * batch written to the drain and a later one made durable in the spill may complete out of order,
 * but a source must never commit a position past data that is neither.
 */
export class InOrder {
  private queue = new Deque<Ticket>();

  add(run: () => void): Ticket {
    const t = { done: false, run };
    this.queue.push(t);
    return t;
  }

  /** Every callback before `t` has run, and `t`'s not yet. */
  isNext(t: Ticket): boolean {
    return this.queue.peek() === t;
  }

  complete(t: Ticket): void {
    if (t.done) return;
    t.done = true;
    while (this.queue.length > 0 && this.queue.peek()!.done) this.queue.shift()!.run();
  }
}
