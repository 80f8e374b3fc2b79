import type { Socket } from 'node:net';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { SinkStats } from '../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../batch.js';
import { octetToLf } from '../framing/octet.js';
import { Connection, KEEPALIVE_MS, type ConnectionOptions, type Outcome, type Protocol } from './connection.js';
import type { Framing } from './sink.js';
import { writeBatches } from './write-loop.js';
import type { Replay, ResendWindow } from './resend-window.js';

export { openTcp, type Outcome } from './connection.js';

/**
 * After our FIN, how long a drain gets to close its side (reading what the kernels still hold
 * first) before the close counts as clean anyway: a drain that never closes must not hold up the
 * end of input, nor have its window sent again at every --reconnect-every.
 */
export const CLOSE_WAIT_MS = 10_000;

export interface TcpSinkOptions extends ConnectionOptions {
  framing: Framing;
  /** --tcp-resend-window; shared by the members of a pool, so a dead member's last bytes go to the next. */
  resend?: ResendWindow;
  /** Default CLOSE_WAIT_MS. */
  closeWaitMs?: number;
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

  constructor(private readonly opts: { host: string; port: number; framing: Framing; stats: SinkStats; log: Logger; keepAliveMs?: number; resend?: ResendWindow; closeWaitMs?: number }) {
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
    let failed = false;
    // The drain's FIN after ours: it read every byte we sent (Linux answers a close with unread bytes with a reset).
    let ourFinSent = false;
    let confirmed = false;
    sock.on('end', () => (confirmed = ourFinSent && !failed));
    const closedP = new Promise<void>((resolve) =>
      sock.once('close', () => {
        closed = true;
        resolve();
      }),
    );
    sock.on('error', (err) => {
      failed = true;
      confirmed = false;
      this.limited.warn('socket', { drain: `${this.opts.host}:${this.opts.port}`, reason: (err as NodeJS.ErrnoException).code ?? err.message }, 'drain connection error');
    });
    const { resend } = this.opts;
    await writeBatches(sock, buffer, this.opts.framing, this.opts.stats, Promise.race([closedP, aborted]), () => closed || isAborted, {
      inflight,
      written: resend && ((frames, count) => resend.record(frames, count, sock)),
      // A pool member on standby leaves the replay to the member that takes over.
      beforeTake: () => {
        const replay = buffer.standby ? undefined : resend?.takeReplay(sock);
        return replay && this.replay(sock, replay, Promise.race([closedP, aborted]));
      },
    });
    if (!closed && !isAborted) {
      // Set before end(): the drain's FIN may be read before end's callback, and it answers ours all the same.
      ourFinSent = true;
      // An abort (a pool whose buffer finished) may destroy the socket meanwhile: end's callback never comes then.
      await Promise.race([new Promise<void>((resolve) => sock.end(resolve)), closedP]);
      // With a window, the close is clean only once the drain closed too: until then what the
      // kernels hold may still die with it (end of input, --reconnect-every).
      const waitMs = this.opts.closeWaitMs ?? CLOSE_WAIT_MS;
      if (resend) this.opts.log.debug({ drain: `${this.opts.host}:${this.opts.port}` }, 'closed our side; waiting for the drain to close its own');
      if (resend && !(await this.drainClosed(closedP, aborted, waitMs, () => confirmed || failed))) {
        this.opts.log.warn({ drain: `${this.opts.host}:${this.opts.port}`, waitedMs: waitMs }, 'the drain did not close the connection after ours; not sending its --tcp-resend-window again');
        confirmed = true;
      }
      sock.destroy();
      if (confirmed || isAborted || !resend) return isAborted ? 'aborted' : 'finished';
      resend.lost(sock);
      return 'lost';
    }
    // Batches the kernel never took go out again on the next connection.
    buffer.requeue(inflight.splice(0));
    sock.destroy();
    if (isAborted) return 'aborted';
    this.opts.resend?.lost(sock);
    return 'lost';
  }

  /** A lost connection's window is still to be sent: the sink must not stop at the end of input. */
  owes(): boolean {
    return this.opts.resend?.owed() ?? false;
  }

  /** Waits for the socket's close after our FIN, at most `waitMs`; false when it did not come. */
  private async drainClosed(closedP: Promise<void>, aborted: Promise<void>, waitMs: number, settled: () => boolean): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs)));
    const late = await Promise.race([closedP.then(() => false), aborted.then(() => false), timedOut]);
    clearTimeout(timer);
    return !late || settled();
  }

  /**
   * After a lost connection (this member's or, in a pool, another's), the window's frames go first,
   * ahead of anything requeued (which is newer): one batch at a time, each once the socket took the
   * one before, so that a replay holds a batch in memory and not the window. Resolves when all are
   * written, or the socket closed (what it had not taken is still the lost connection's to send).
   */
  private async replay(sock: Socket, replay: Replay, closed: Promise<void>): Promise<void> {
    this.opts.log.info({ drain: `${this.opts.host}:${this.opts.port}`, messages: replay.messages }, 'sending again what the lost connection may not have delivered (--tcp-resend-window)');
    for (let chunk = replay.next(); chunk; chunk = replay.next()) {
      // The chunk's memory is the replay's next one: the socket must be done with it first.
      const data = this.opts.framing === 'lf' ? octetToLf(chunk.frames) : chunk.frames;
      const written = new Promise<boolean>((resolve) => sock.write(data, (err) => resolve(!err)));
      this.opts.stats.messagesResent += chunk.count;
      if (!(await Promise.race([written, closed.then(() => false)]))) return;
    }
  }
}

/** A plain TCP (or, with a TLS `open`, TLS) drain: a connection that speaks octet-counted or LF syslog. */
export class TcpSink extends Connection {
  constructor(opts: TcpSinkOptions) {
    super(opts, new SyslogProtocol(opts));
  }
}
