import { connect as netConnect, type Socket } from 'node:net';
import { octetToLf } from '../framing/octet.js';
import { RateLimitedLog, type Logger } from '../ops/log.js';
import type { Stats } from '../ops/stats.js';
import type { Batch, BatchBuffer } from '../record.js';
import { Backoff } from './backoff.js';
import type { Framing, Sink } from './sink.js';

export interface TcpSinkOptions {
  host: string;
  port: number;
  framing: Framing;
  stats: Stats;
  log: Logger;
  backoff?: Backoff;
  connectTimeoutMs?: number;
  keepAliveMs?: number;
  /** How long a connection must last before the backoff starts over. */
  stableMs?: number;
  /**
   * Opens the connection; resolves once it is ready to carry data. The TLS sink passes its own;
   * a rejection is a failed attempt, retried with the same backoff. `signal` fires when the sink is aborted.
   */
  open?: (host: string, port: number, timeoutMs: number, signal?: AbortSignal) => Promise<Socket>;
}

/** TCP keepalive probes start after this much silence: a drain that vanished without a FIN is noticed. */
export const KEEPALIVE_MS = 30_000;

export type Outcome = 'finished' | 'lost' | 'aborted';

export function openTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`connect timed out after ${timeoutMs} ms`)));
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.setTimeout(0);
      sock.removeListener('error', reject);
      resolve(sock);
    });
  });
}

/**
 * A plain TCP drain. Connects, reconnects forever with jittered backoff, and treats a batch as handed
 * on once its bytes were written to the socket (the kernel has them). Batches written to a
 * connection that then failed are sent again on the next one, so a drop costs duplicates, never
 * losses, on our side; what the drain's kernel held at a drain crash is lost to plain TCP (RELP
 * exists for that).
 */
export class TcpSink implements Sink {
  private readonly backoff: Backoff;
  private readonly limited: RateLimitedLog;
  private aborted = false;
  private socket: Socket | undefined;
  private wakeAbort: (() => void) | undefined;
  private readonly abortedP: Promise<void>;
  private readonly abortController = new AbortController();
  /** Each distinct reason a connect failed for is logged on its own (a TLS cause must not hide behind a refusal). */
  private readonly connectFailures = new Set<string>();

  constructor(protected readonly opts: TcpSinkOptions) {
    this.backoff = opts.backoff ?? new Backoff();
    this.limited = new RateLimitedLog(opts.log);
    this.abortedP = new Promise((resolve) => (this.wakeAbort = resolve));
  }

  private get target(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  async run(buffer: BatchBuffer): Promise<void> {
    let connectedOnce = false;
    while (!this.aborted) {
      if (buffer.finished) return;
      const sock = await this.connect();
      if (!sock) return; // aborted
      this.opts.stats.drainConnected = true;
      if (connectedOnce) this.opts.stats.reconnects++;
      connectedOnce = true;
      for (const key of this.connectFailures) this.limited.clear(key);
      this.connectFailures.clear();
      this.opts.log.info({ drain: this.target }, 'connected to drain');
      const since = Date.now();
      const outcome = await this.pump(sock, buffer);
      this.opts.stats.drainConnected = false;
      if (Date.now() - since >= (this.opts.stableMs ?? 5000)) this.backoff.reset();
      if (outcome !== 'lost') return;
      this.limited.warn('lost', { drain: this.target }, 'connection to drain lost; reconnecting');
      await this.delay(this.backoff.next());
    }
  }

  abort(): void {
    this.aborted = true;
    this.socket?.destroy();
    this.abortController.abort();
    this.wakeAbort?.();
  }

  private async connect(): Promise<Socket | undefined> {
    const open = this.opts.open ?? openTcp;
    while (!this.aborted) {
      try {
        const opening = open(this.opts.host, this.opts.port, this.opts.connectTimeoutMs ?? 10_000, this.abortController.signal);
        // abort() must not wait out a connect or handshake timeout: a late socket is closed when it comes.
        const sock = await Promise.race([opening, this.abortedP.then(() => undefined)]);
        if (this.aborted || !sock) {
          void opening.then((late) => late.destroy(), () => {});
          return undefined;
        }
        return sock;
      } catch (err) {
        const { code, message } = err as NodeJS.ErrnoException;
        const reason = code ?? message;
        this.connectFailures.add(`connect:${reason}`);
        const detail = code && !message.includes(code) ? { detail: message } : {};
        this.limited.warn(`connect:${reason}`, { drain: this.target, reason, ...detail, attempt: this.backoff.attempts + 1 }, 'cannot connect to drain; retrying');
        await this.delay(this.backoff.next());
      }
    }
    return undefined;
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      void this.abortedP.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Writes batches until the buffer is finished, the connection fails, or abort. */
  protected async pump(sock: Socket, buffer: BatchBuffer): Promise<Outcome> {
    this.socket = sock;
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
      this.limited.warn('socket', { drain: this.target, reason: (err as NodeJS.ErrnoException).code ?? err.message }, 'drain connection error');
    });
    const { stats, framing } = this.opts;
    while (!closed && !this.aborted) {
      const batch = buffer.take();
      if (!batch) {
        if (buffer.finished) break;
        await Promise.race([buffer.waitForData(), closedP, this.abortedP]);
        continue;
      }
      if (batch.frames.length === 0) {
        buffer.handedOn(batch);
        continue;
      }
      inflight.push(batch);
      const data = framing === 'lf' ? octetToLf(batch.frames) : batch.frames;
      const ok = sock.write(data, (err) => {
        if (err || inflight[0] !== batch) return;
        inflight.shift();
        stats.messagesSent += batch.count;
        stats.bytesSent += data.length;
        stats.lastSendMs = Date.now();
        buffer.handedOn(batch);
      });
      if (!ok) await Promise.race([new Promise((r) => sock.once('drain', r)), closedP, this.abortedP]);
    }
    if (!closed && !this.aborted) {
      await new Promise<void>((resolve) => sock.end(resolve));
      sock.destroy();
      this.socket = undefined;
      return 'finished';
    }
    // Batches the kernel never took go out again on the next connection.
    buffer.requeue(inflight.splice(0));
    sock.destroy();
    this.socket = undefined;
    return this.aborted ? 'aborted' : 'lost';
  }
}
