/** Counts per client address (connections, requests in flight); an address at its cap is refused. */
export class PerClient {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes one place for `addr`; false when it already holds `max`. */
  take(addr: string): boolean {
    const n = this.counts.get(addr) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(addr, n + 1);
    return true;
  }

  give(addr: string): void {
    const n = (this.counts.get(addr) ?? 1) - 1;
    if (n <= 0) this.counts.delete(addr);
    else this.counts.set(addr, n);
  }
}

/** Requests up to this size are "small": kube-apiserver's usual batches (400 events). */
export const SMALL_REQUEST_BYTES = 1024 * 1024;
/** The part of the budget only small requests may use: a flood of large ones never starves them. */
const SMALL_SHARE = 1 / 4;

/**
 * Bytes and events held by every webhook request in flight together. A request reserves bytes as
 * they are declared (Content-Length) or arrive (chunked), and events as they are split out; what
 * does not fit is refused (429, Retry-After) instead of growing the heap. All is given back when
 * the request is answered. Large requests fill at most three quarters of it (all of it when alone).
 */
export class InflightBudget {
  bytes = 0;
  events = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxEvents: number,
  ) {}

  reserve(): Reservation {
    return new Reservation(this);
  }
}

export class Reservation {
  bytes = 0;
  events = 0;

  constructor(private readonly budget: InflightBudget) {}

  /** Reserves up to `total` bytes for this request; false (nothing taken) when that does not fit. */
  growBytes(total: number): boolean {
    const more = total - this.bytes;
    if (more <= 0) return true;
    if (!this.fits(this.budget.bytes + more, this.budget.maxBytes, total > SMALL_REQUEST_BYTES, this.budget.bytes === this.bytes)) return false;
    this.budget.bytes += more;
    this.bytes = total;
    return true;
  }

  growEvents(total: number): boolean {
    const more = total - this.events;
    if (more <= 0) return true;
    if (!this.fits(this.budget.events + more, this.budget.maxEvents, this.bytes > SMALL_REQUEST_BYTES, this.budget.events === this.events)) return false;
    this.budget.events += more;
    this.events = total;
    return true;
  }

  private fits(after: number, max: number, large: boolean, alone: boolean): boolean {
    if (after > max) return false;
    return !large || alone || after <= max * (1 - SMALL_SHARE);
  }

  release(): void {
    this.budget.bytes -= this.bytes;
    this.budget.events -= this.events;
    this.bytes = this.events = 0;
  }
}
