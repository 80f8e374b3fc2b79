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
  /** Written to the spill, not yet fsynced nor handed on: good until a reboot, not a power loss. */
  soft: boolean;
  readonly run: () => void;
  /** Runs once the ticket and every one before it are done or soft (a position valid for this boot). */
  readonly onSoft?: () => void;
}

/**
 * Calls callbacks in the order they were registered, each once, however their batches finish: a
 * batch written to the drain and a later one made durable in the spill may complete out of order,
 * but a source must never commit a position past data that is neither.
 *
 * A second, weaker frontier runs each ticket's `onSoft` once it and every ticket before it are
 * done or soft (spilled, written but not fsynced): its data then survives a kill -9 (the page
 * cache does) but not a power loss. A done ticket still runs `run` only in strict order.
 */
export class InOrder {
  private queue = new Deque<Ticket>();
  /** Tickets at the front of the queue already passed by the soft frontier. */
  private softTo = 0;

  add(run: () => void, onSoft?: () => void): Ticket {
    const t: Ticket = { done: false, soft: false, run, ...(onSoft && { onSoft }) };
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
    this.advance();
  }

  /** `t`'s data is in the spill (write() done, no fsync yet). */
  soften(t: Ticket): void {
    if (t.done || t.soft) return;
    t.soft = true;
    this.advance();
  }

  private advance(): void {
    const q = this.queue;
    while (q.length > 0 && q.peek()!.done) {
      q.shift()!.run();
      if (this.softTo > 0) this.softTo--;
    }
    for (let t = q.at(this.softTo); t && (t.done || t.soft); t = q.at(++this.softTo)) t.onSoft?.();
  }
}
