import type { Latch } from './signal.js';
import { defaultNumber } from '../config/options.js';

/**
 * Full-jitter exponential backoff: the n-th retry waits a random time in [floor, min(cap, base·2^n)].
 * The floor bounds the reconnect rate; the cap bounds how stale a recovered drain can stay.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = 200,
    private readonly capMs = defaultNumber('reconnect-max-delay'),
    private readonly floorMs = 100,
    private readonly random: () => number = Math.random,
  ) {}

  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.max(this.floorMs, Math.min(this.capMs, Math.floor(this.random() * ceiling)));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Waits `ms`, or less when `aborted` settles first (a wait per reconnect: nothing is left on `aborted`). */
export function abortableDelay(ms: number, aborted: Latch): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return aborted.race(elapsed, undefined).then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  );
}
