import type { Socket } from 'node:net';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { Stats } from '../telemetry/stats.js';
import type { Batch, BatchBuffer } from '../batch.js';
import { Connection, KEEPALIVE_MS, type ConnectionOptions, type Outcome, type Protocol } from './connection.js';
import type { Framing } from './sink.js';
import { writeBatches } from './write-loop.js';

export { openTcp, type Outcome } from './connection.js';

export interface TcpSinkOptions extends ConnectionOptions {
  framing: Framing;
}

/**
 * Syslog over a connection, octet-counted or LF-terminated: a batch is handed on once its bytes
 * were written to the socket (the kernel has them). Batches written to a connection that then
 * failed are sent again on the next one, so a drop costs duplicates, never losses, on our side;
 * what the drain's kernel held at a drain crash is lost to plain TCP (RELP exists for that).
 */
export class SyslogProtocol implements Protocol {
  private readonly limited: RateLimitedLog;

  constructor(private readonly opts: { host: string; port: number; framing: Framing; stats: Stats; log: Logger; keepAliveMs?: number }) {
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
    await writeBatches(sock, buffer, this.opts.framing, this.opts.stats, Promise.race([closedP, aborted]), () => closed || isAborted, inflight);
    if (!closed && !isAborted) {
      await new Promise<void>((resolve) => sock.end(resolve));
      sock.destroy();
      return 'finished';
    }
    // Batches the kernel never took go out again on the next connection.
    buffer.requeue(inflight.splice(0));
    sock.destroy();
    return isAborted ? 'aborted' : 'lost';
  }
}

/** A plain TCP (or, with a TLS `open`, TLS) drain: a connection that speaks octet-counted or LF syslog. */
export class TcpSink extends Connection {
  constructor(opts: TcpSinkOptions) {
    super(opts, new SyslogProtocol(opts));
  }
}
