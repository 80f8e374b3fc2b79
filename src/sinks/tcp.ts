import type { Socket } from 'node:net';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { SinkStats } from '../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../batch.js';
import { octetToLf } from '../framing/octet.js';
import { Connection, KEEPALIVE_MS, type ConnectionOptions, type Outcome, type Protocol } from './connection.js';
import type { Framing } from './sink.js';
import { writeBatches } from './write-loop.js';
import type { ResendWindow } from './resend-window.js';

export { openTcp, type Outcome } from './connection.js';

export interface TcpSinkOptions extends ConnectionOptions {
  framing: Framing;
  /** --tcp-resend-window; shared by the members of a pool, so a dead member's last bytes go to the next. */
  resend?: ResendWindow;
}

/**
 * Syslog over a connection, octet-counted or LF-terminated: a batch is handed on once its bytes
 * were written to the socket (the kernel has them). Batches written to a connection that then
 * failed are sent again on the next one, so a drop costs duplicates, never losses, on our side.
 * What the kernels held when a drain died is covered by the resend window (resend-window.ts), up
 * to its size; beyond it, plain TCP loses it (RELP exists for that).
 */
export class SyslogProtocol implements Protocol {
  private readonly limited: RateLimitedLog;

  constructor(private readonly opts: { host: string; port: number; framing: Framing; stats: SinkStats; log: Logger; keepAliveMs?: number; resend?: ResendWindow }) {
    this.limited = new RateLimitedLog(opts.log);
  }

  async pump(sock: Socket, buffer: BatchBuffer, aborted: Promise<void>): Promise<Outcome> {
    let isAborted = false;
    void aborted.then(() => (isAborted = true));
    sock.setKeepAlive(true, this.opts.keepAliveMs ?? KEEPALIVE_MS);
    sock.setNoDelay(true);
    sock.resume(); // a syslog drain sends nothing; reading notices its FIN even while we are idle
    const inflight: Batch[] = [];
    let closed = false;
    const closedP = new Promise<void>((resolve) =>
      sock.once('close', () => {
        closed = true;
        resolve();
      }),
    );
    sock.on('error', (err) => {
      this.limited.warn('socket', { drain: `${this.opts.host}:${this.opts.port}`, reason: (err as NodeJS.ErrnoException).code ?? err.message }, 'drain connection error');
    });
    const { resend } = this.opts;
    await writeBatches(sock, buffer, this.opts.framing, this.opts.stats, Promise.race([closedP, aborted]), () => closed || isAborted, {
      inflight,
      written: resend && ((frames, count) => resend.record(frames, count, sock)),
      // A pool member on standby leaves the replay to the member that takes over.
      beforeTake: () => {
        if (!buffer.standby) this.replay(sock);
      },
    });
    if (!closed && !isAborted) {
      await new Promise<void>((resolve) => sock.end(resolve));
      sock.destroy();
      return 'finished';
    }
    // Batches the kernel never took go out again on the next connection.
    buffer.requeue(inflight.splice(0));
    sock.destroy();
    if (isAborted) return 'aborted';
    this.opts.resend?.lost(sock);
    return 'lost';
  }

  /**
   * After a lost connection (this member's or, in a pool, another's), the window's frames go first,
   * ahead of anything requeued (which is newer). Queued on the socket without waiting: they are
   * bounded and already in memory, and the next write then waits for the socket to drain.
   */
  private replay(sock: Socket): void {
    const chunks = this.opts.resend?.takeReplay(sock);
    if (!chunks) return;
    let messages = 0;
    for (const { frames, count } of chunks) {
      sock.write(this.opts.framing === 'lf' ? octetToLf(frames) : frames);
      messages += count;
    }
    this.opts.stats.messagesResent += messages;
    this.opts.log.info({ drain: `${this.opts.host}:${this.opts.port}`, messages }, 'sending again what the lost connection may not have delivered (--tcp-resend-window)');
  }
}

/** A plain TCP (or, with a TLS `open`, TLS) drain: a connection that speaks octet-counted or LF syslog. */
export class TcpSink extends Connection {
  constructor(opts: TcpSinkOptions) {
    super(opts, new SyslogProtocol(opts));
  }
}
