import { connect as netConnect, isIPv6, type LookupFunction, type Socket } from 'node:net';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { SinkStats } from '../telemetry/stats.js';
import type { BatchBuffer } from '../batch.js';
import { abortableDelay, Backoff } from './backoff.js';
import { Latch } from './signal.js';
import { RotatingView } from './rotation.js';
import type { Sink } from './sink.js';

export interface ConnectionOptions {
  host: string;
  port: number;
  stats: SinkStats;
  log: Logger;
  backoff?: Backoff;
  connectTimeoutMs?: number;
  keepAliveMs?: number;
  /** --reconnect-every: replace each connection after about this long, between two frames. */
  reconnectEveryMs?: number;
  /** How long a connection must last before the backoff starts over. */
  stableMs?: number;
  /**
   * Opens the connection; resolves once it is ready to carry data. TLS passes its own;
   * a rejection is a failed attempt, retried with the same backoff. `signal` fires when the sink is aborted.
   */
  open?: Opener;
  /** Connect to this address instead of resolving `host` (a member of a name with several addresses); TLS still checks `host`. */
  address?: string;
}

export type Opener = (host: string, port: number, timeoutMs: number, signal?: AbortSignal, address?: string) => Promise<Socket>;

/** A `lookup` for net/tls.connect that answers `address` (TLS then still verifies the host name given). */
export function pinnedLookup(address: string | undefined): LookupFunction | undefined {
  if (!address) return undefined;
  const family = isIPv6(address) ? 6 : 4;
  return (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
    else cb(null, address, family);
  };
}

/** TCP keepalive probes start after this much silence: a drain that vanished without a FIN is noticed. */
export const KEEPALIVE_MS = 30_000;

export type Outcome = 'finished' | 'lost' | 'aborted';

/**
 * What is spoken on a connection (octet-counted or LF syslog, RELP). The connection connects, backs
 * off and reconnects; the protocol pumps batches over each socket it is given.
 */
export interface Protocol {
  /** After connecting, before any data: a handshake of the protocol's own (RELP `open`); a rejection is a failed attempt. */
  greet?(sock: Socket, timeoutMs: number): Promise<void>;
  /**
   * Writes batches until the buffer is finished, the socket fails, or `aborted` resolves; hands each
   * one on when it counts as delivered, and gives back (requeue) what did not.
   */
  pump(sock: Socket, buffer: BatchBuffer, aborted: Promise<void>): Promise<Outcome>;
  /** The sink is being aborted: stop at once. */
  abort?(): void;
  /** Something is still to be sent though the buffer is finished (a lost connection's resend window). */
  owes?(): boolean;
}

export function openTcp(host: string, port: number, timeoutMs: number, _signal?: AbortSignal, address?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Without an address, node resolves `host` at every connect: a drain that moved is found again.
    const sock = netConnect({ host, port, lookup: pinnedLookup(address) });
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
 * A drain over TCP (or TLS, by `open`): connects, reconnects forever with jittered backoff, logs each
 * cause of failure rate-limited, and lets its protocol pump each connection.
 */
export class Connection implements Sink {
  private readonly backoff: Backoff;
  private readonly limited: RateLimitedLog;
  private aborted = false;
  private socket: Socket | undefined;
  private wakeAbort: (() => void) | undefined;
  private readonly abortedP: Promise<void>;
  /** abortedP, raced at every connect and backoff for the sink's whole life. */
  private readonly abortLatch: Latch;
  private readonly abortController = new AbortController();
  /** Each distinct reason a connect failed for is logged on its own (a TLS cause must not hide behind a refusal). */
  private readonly connectFailures = new Set<string>();

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly protocol: Protocol,
  ) {
    this.backoff = opts.backoff ?? new Backoff();
    this.limited = new RateLimitedLog(opts.log);
    this.abortedP = new Promise((resolve) => (this.wakeAbort = resolve));
    this.abortLatch = new Latch(this.abortedP);
  }

  private get target(): string {
    return `${this.opts.host}:${this.opts.port}${this.opts.address ? ` (${this.opts.address})` : ''}`;
  }

  async run(buffer: BatchBuffer): Promise<void> {
    let connectedOnce = false;
    while (!this.aborted) {
      if (buffer.finished && !this.protocol.owes?.()) return;
      const sock = await this.connect();
      if (!sock) {
        this.opts.stats.drainConnected = false;
        return; // aborted
      }
      this.opts.stats.drainConnects++;
      this.opts.stats.drainConnected = true;
      if (connectedOnce) this.opts.stats.reconnects++;
      connectedOnce = true;
      for (const key of this.connectFailures) this.limited.clear(key);
      this.connectFailures.clear();
      this.opts.log.info({ drain: this.target }, 'connected to drain');
      const since = Date.now();
      this.socket = sock;
      const every = this.opts.reconnectEveryMs;
      const view = every ? new RotatingView(buffer, every) : undefined;
      const outcome = await this.protocol.pump(sock, view ?? buffer, this.abortedP);
      view?.stop();
      this.socket = undefined;
      const rotated = outcome === 'finished' && view?.rotated;
      // A connection replaced on purpose still counts as up while the next one opens: a pool does
      // not fail over for it, /healthz does not blink. A failed connect says otherwise.
      if (!rotated) this.opts.stats.drainConnected = false;
      if (Date.now() - since >= (this.opts.stableMs ?? 5000)) this.backoff.reset();
      if (rotated) {
        this.opts.log.info({ drain: this.target, afterMs: Date.now() - since }, 'closed the connection to open a new one (--reconnect-every)');
        continue;
      }
      if (outcome !== 'lost') return;
      this.opts.stats.drainFailures++;
      this.limited.warn('lost', { drain: this.target }, 'connection to drain lost; reconnecting');
      await this.delay(this.backoff.next());
    }
  }

  abort(): void {
    this.aborted = true;
    this.protocol.abort?.();
    this.socket?.destroy();
    this.abortController.abort();
    this.wakeAbort?.();
  }

  private async connect(): Promise<Socket | undefined> {
    const open = this.opts.open ?? openTcp;
    while (!this.aborted) {
      try {
        const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
        const opening = open(this.opts.host, this.opts.port, timeoutMs, this.abortController.signal, this.opts.address).then(async (sock) => {
          await this.protocol.greet?.(sock, timeoutMs);
          return sock;
        });
        // abort() must not wait out a connect or handshake timeout: a late socket is closed when it comes.
        const sock = await this.abortLatch.race(opening, undefined);
        if (this.aborted || !sock) {
          void opening.then((late) => late.destroy(), () => {});
          return undefined;
        }
        return sock;
      } catch (err) {
        const { code, message } = err as NodeJS.ErrnoException;
        const reason = code ?? message;
        this.opts.stats.drainFailures++;
        this.opts.stats.drainConnected = false;
        this.connectFailures.add(`connect:${reason}`);
        const detail = code && !message.includes(code) ? { detail: message } : {};
        this.limited.warn(`connect:${reason}`, { drain: this.target, reason, ...detail, attempt: this.backoff.attempts + 1 }, 'cannot connect to drain; retrying');
        await this.delay(this.backoff.next());
      }
    }
    return undefined;
  }

  private delay(ms: number): Promise<void> {
    return abortableDelay(ms, this.abortLatch);
  }
}
