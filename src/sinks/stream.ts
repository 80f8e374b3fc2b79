import type { Writable } from 'node:stream';
import type { Stats } from '../telemetry/stats.js';
import type { BatchBuffer } from '../batch.js';
import type { Framing, Sink } from './sink.js';
import { writeBatches } from './write-loop.js';

/**
 * `--to -` on a terminal: a person reads it, and octet counts run every message into one line, so it
 * is one message per line (LF framing) unless `--framing` was given (flag or config key). Piped, the
 * stream stays what a drain expects.
 */
export function stdoutFraming(framing: Framing, given: boolean, isTTY: boolean): Framing {
  return isTTY && !given ? 'lf' : framing;
}

export const TERMINAL_NOTE = 'auditfwd: stdout is a terminal: one message per line (LF framing); pipe it, or give --framing, for RFC 6587 octet counting\n';

/** `--to -`: the framed stream on standard output, so auditfwd chains like a shell pipe. */
export class StreamSink implements Sink {
  private aborted = false;
  private wakeAbort: (() => void) | undefined;

  constructor(
    private readonly out: Writable,
    private readonly framing: Framing,
    private readonly stats: Stats,
  ) {}

  async run(buffer: BatchBuffer): Promise<void> {
    const failed = new Promise<never>((_, reject) => this.out.once('error', reject));
    failed.catch(() => {});
    const aborted = new Promise<void>((resolve) => (this.wakeAbort = resolve));
    await writeBatches(this.out, buffer, this.framing, this.stats, Promise.race([failed, aborted]), () => this.aborted);
    if (!this.aborted) await Promise.race([new Promise<void>((r) => this.out.write('', () => r())), failed]);
  }

  abort(): void {
    this.aborted = true;
    this.wakeAbort?.();
  }
}
