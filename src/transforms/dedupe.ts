/**
 * Remembers which (auditID, stage) pairs were forwarded recently, bounded both by count and by age,
 * so that the same event arriving twice (from the audit file and the webhook, or a replay) is sent once.
 * A Map keeps insertion order, which is also age order: the oldest entries are at its front.
 */
export class Deduper {
  private readonly seen = new Map<string, number>();

  constructor(
    readonly maxEntries: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** True when the pair was already seen within the window; otherwise records it and returns false. */
  isDuplicate(auditId: string, stage: string): boolean {
    const t = this.now();
    this.expire(t);
    const key = auditId + '\u0000' + stage;
    if (this.seen.has(key)) return true;
    this.seen.set(key, t);
    if (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
    return false;
  }

  private expire(t: number): void {
    for (const [key, at] of this.seen) {
      if (t - at < this.windowMs) break;
      this.seen.delete(key);
    }
  }
}
