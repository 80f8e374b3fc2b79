/**
 * Waits that are raced again and again over a long life (every batch, a connection's whole life)
 * must leave nothing behind once they settle. `Promise.race([p, longLived])` adds a reaction to
 * `longLived` at every call, kept until `longLived` settles (nodejs/node#17469): racing a
 * connection's end per batch grew the heap by about 0.8 MB per GB forwarded, and a follower's without
 * bound (docs/design.md, "Races that leave nothing behind").
 */

/** Resolves everything waiting on it when poked; each wait gets the next poke. */
export class Signal {
  private readonly waiters = new Set<() => void>();

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** The next poke or `p`'s settling, whichever comes first (rejects as `p` does); leaves no waiter behind. */
  waitOr(p: Promise<unknown>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.add(resolve);
      p.then(
        () => {
          this.waiters.delete(resolve);
          resolve();
        },
        (err: unknown) => {
          this.waiters.delete(resolve);
          reject(err);
        },
      );
    });
  }

  poke(): void {
    // Poked at every RELP answer and NATS ack, mostly with nobody waiting. A copy made every time went
    // straight to the old generation (V8 pretenured it): 6 MB of heap per 100 ms (docs/design.md).
    if (this.waiters.size === 0) return;
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w();
  }

  /** Waits not yet poked nor ended otherwise. */
  get waiting(): number {
    return this.waiters.size;
  }
}

type Listener = (ok: boolean, value: unknown) => void;

/**
 * A promise that lives long (a connection's end, an abort), to be raced against many short ones:
 * each race takes its listener off again when the short one settles first.
 */
export class Latch {
  private result: { ok: boolean; value: unknown } | undefined;
  private readonly listeners = new Set<Listener>();

  /** Settles once `p` does. A rejection of `p` is handled here: it reaches the races, never the process. */
  constructor(p: Promise<unknown>) {
    p.then(
      (value) => this.settle(true, value),
      (value) => this.settle(false, value),
    );
  }

  /** Races waiting on the latch. */
  get waiting(): number {
    return this.listeners.size;
  }

  /**
   * As Promise.race([p, latch]), with `ifLatched` for the latch's value: `p`'s outcome if it settles
   * first, else `ifLatched` (or the latch's rejection).
   */
  race<T, U>(p: Promise<T>, ifLatched: U): Promise<T | U> {
    const r = this.result;
    if (r) return r.ok ? Promise.resolve(ifLatched) : Promise.reject(r.value);
    return new Promise<T | U>((resolve, reject) => {
      const listener: Listener = (ok, value) => (ok ? resolve(ifLatched) : reject(value));
      this.listeners.add(listener);
      p.then(
        (v) => {
          this.listeners.delete(listener);
          resolve(v);
        },
        (err: unknown) => {
          this.listeners.delete(listener);
          reject(err);
        },
      );
    });
  }

  private settle(ok: boolean, value: unknown): void {
    this.result = { ok, value };
    const listening = [...this.listeners];
    this.listeners.clear();
    for (const l of listening) l(ok, value);
  }
}
