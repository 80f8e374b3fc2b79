import { join } from 'node:path';
import type { Logger, RateLimitedLog } from '../../telemetry/log.js';
import type { Stats } from '../../telemetry/stats.js';
import { errCode, writeFileDurably, type SpillIo } from './io.js';

/** What a spill that could not be written must take again before it counts as writable. */
const PROBE_BYTES = 64 * 1024;

/** Why the spill cannot grow, since when: /healthz and metrics read it. */
export interface SpillProblem {
  code: string;
  sinceMs: number;
}

/**
 * Whether the spill can be written. A failed write (ENOSPC, EIO, EROFS, EDQUOT, its folder gone)
 * marks it unwritable: said once (rate-limited), counted, and tried again after `retryMs`, by the
 * next write or by a small probe, so that it recovers by itself.
 */
export class DiskState {
  private stuck: { code: string; since: number; retryAt: number } | undefined;
  failures = 0;

  constructor(
    private readonly dir: string,
    private readonly io: SpillIo,
    private readonly retryMs: number,
    private readonly log: Logger,
    private readonly limited: RateLimitedLog,
    private readonly stats: Stats,
    private readonly onWritable: () => void,
  ) {}

  get problem(): SpillProblem | undefined {
    return this.stuck && { code: this.stuck.code, sinceMs: this.stuck.since };
  }
  get unwritable(): boolean {
    return this.stuck !== undefined;
  }
  /** Not known to fail, or failed long enough ago to try again. */
  get canWrite(): boolean {
    return !this.stuck || Date.now() >= this.stuck.retryAt;
  }
  /** Lets the next write try at once (a last try when stopping). */
  retryNow(): void {
    if (this.stuck) this.stuck.retryAt = 0;
  }

  failed(err: unknown): void {
    const code = errCode(err);
    const now = Date.now();
    this.failures++;
    if (!this.stuck) this.stats.spillUnwritable++;
    this.stuck = { code, since: this.stuck?.since ?? now, retryAt: now + this.retryMs };
    this.limited.warn(
      'write',
      { err: String(err), code, dir: this.dir },
      'cannot write to the spill: it stops growing; what it holds is still sent, new lines wait in memory and --when-full applies; retrying',
    );
  }

  succeeded(): void {
    if (!this.stuck) return;
    this.log.info({ dir: this.dir, code: this.stuck.code, forMs: Date.now() - this.stuck.since }, 'the spill can be written again; spilling resumes');
    this.limited.clear('write');
    this.stuck = undefined;
    this.onWritable();
  }

  /** Nothing may need writing for a long while (the drain keeps up): a small write says whether it could. */
  async probe(): Promise<void> {
    if (!this.stuck || !this.canWrite) return;
    try {
      await writeFileDurably(this.io, this.dir, 'probe', Buffer.alloc(PROBE_BYTES));
      await this.io.unlink(join(this.dir, 'probe'));
    } catch (err) {
      this.failed(err);
      return;
    }
    this.succeeded();
  }
}
