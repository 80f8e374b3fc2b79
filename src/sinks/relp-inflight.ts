/**
 * RELP messages sent and not yet answered, by transaction number: which batch (its progress) and
 * which message of it. Slots in fixed arrays, indexed by TXNR: a Map of one small object per message
 * (and its rehashing as messages came and went) was old-space garbage at every message (the objects
 * outlived the 1 MB young generation: bench/README.md, RSS). Transaction numbers are given in
 * sequence, so the slots of those in flight differ while they span fewer than `capacity` numbers.
 */
export class InFlight<P> {
  private readonly owners: Array<P | undefined>;
  private readonly txnrs: Int32Array;
  private readonly indexes: Int32Array;
  private readonly mask: number;
  private count = 0;

  constructor(window: number) {
    let capacity = 16;
    while (capacity < 2 * window) capacity *= 2;
    this.owners = new Array<P | undefined>(capacity).fill(undefined);
    this.txnrs = new Int32Array(capacity).fill(-1);
    this.indexes = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** False while an older message still holds the slot of `txnr` (far out of order answers): wait as for a full window. */
  hasRoomFor(txnr: number): boolean {
    return this.txnrs[txnr & this.mask] === -1;
  }

  set(txnr: number, owner: P, index: number): void {
    const s = txnr & this.mask;
    this.txnrs[s] = txnr;
    this.owners[s] = owner;
    this.indexes[s] = index;
    this.count++;
  }

  /** The owner of `txnr` (its message index in `lastIndex`), removed; undefined when it is not in flight. */
  take(txnr: number): P | undefined {
    const s = txnr & this.mask;
    if (this.txnrs[s] !== txnr) return undefined;
    const owner = this.owners[s];
    this.lastIndex = this.indexes[s];
    this.txnrs[s] = -1;
    this.owners[s] = undefined;
    this.count--;
    return owner;
  }

  lastIndex = 0;
}
