import pino, { type Logger } from 'pino';
import { isoTime } from '../framing/iso-time.js';
import { prettyStream } from './pretty.js';

export type { Logger };

/** pino's stdTimeFunctions.isoTime without a Date (framing/iso-time.ts). */
const isoTimestamp = (): string => `,"time":"${isoTime(Date.now())}"`;

/**
 * JSON on stderr, synchronously, never on stdout (which may carry the framed stream). `auto` is
 * readable text when stderr is a terminal (someone is watching), JSON otherwise (journald, bpm, docker).
 */
export function createLogger(level: string, format: 'auto' | 'json' | 'pretty' = 'json'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY);
  return pino(
    { name: 'auditfwd', level, base: { pid: process.pid }, timestamp: isoTimestamp },
    pretty ? prettyStream(2, Boolean(process.stderr.isTTY)) : pino.destination({ dest: 2, sync: true }),
  );
}

/**
 * Logs a condition that may repeat for hours (a drain that is down) at most once per interval,
 * with how many times it happened in between.
 */
export class RateLimitedLog {
  private last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.log.warn(seen?.suppressed ? { ...obj, repeated: seen.suppressed } : obj, msg);
    this.last.set(key, { at: now, suppressed: 0 });
  }

  /** The condition is over: the next occurrence is logged at once. */
  clear(key: string): void {
    this.last.delete(key);
  }
}
