import type { Logger } from '../telemetry/log.js';
import type { SinkStats, Stats } from '../telemetry/stats.js';
import { Backoff } from './backoff.js';
import type { Opener } from './connection.js';
import { PoolSink, type PoolMode } from './pool.js';
import { RelpSink, type RelpProgress } from './relp.js';
import { autoWindowBytes, END_REPLAYS, ResendWindow } from './resend-window.js';
import type { Member } from './resolve.js';
import type { Framing, Sink } from './sink.js';
import { TcpSink } from './tcp.js';

/** What the socket drains (tcp, tls, relp, relp+tls) take from the settings. */
export interface DrainSettings {
  framing: Framing;
  pool: PoolMode;
  reconnectMaxDelayMs: number;
  reconnectEveryMs: number | undefined;
  /** auto: sized here, from the kernel's limits and the members sending at once. */
  tcpResendWindowBytes: number | 'auto';
  relpWindow: number;
  relpAckTimeoutMs: number;
  relpMaxRefusals: number;
}

/** One drain, or a pool of them: a sink per member, and what the members share. */
export function drainSink(members: Member[], s: DrainSettings, open: Opener | undefined, stats: Stats, log: Logger): Sink {
  // One of each for the whole pool: a member that fails leaves them to the next.
  const resend = members.some((m) => m.drain.transport === 'tcp' || m.drain.transport === 'tls') ? resendWindow(members.length, s, log) : undefined;
  const progress = new Map<number, RelpProgress>();
  const make = ({ drain: d, address }: Member) => (memberStats: SinkStats) => {
    const common = { host: d.host, port: d.port, address, stats: memberStats, log, backoff: new Backoff(200, s.reconnectMaxDelayMs), open, reconnectEveryMs: s.reconnectEveryMs };
    if (d.transport === 'relp' || d.transport === 'relp+tls') {
      return new RelpSink({ ...common, window: s.relpWindow, ackTimeoutMs: s.relpAckTimeoutMs, maxRefusals: s.relpMaxRefusals, progress });
    }
    return new TcpSink({ ...common, framing: s.framing, resend });
  };
  if (members.length === 1) return make(members[0])(stats);
  return new PoolSink(
    members.map((m) => ({ name: m.name, make: make(m) })),
    s.pool,
    stats,
    log,
    () => resend?.owed() ?? false,
  );
}

/**
 * One window for the pool. In round-robin every member may hold a connection's worth in flight at
 * once, interleaved in the window; in failover one member sends at a time.
 */
function resendWindow(members: number, s: DrainSettings, log: Logger): ResendWindow | undefined {
  const plain = s.tcpResendWindowBytes;
  const bytes = plain === 'auto' ? autoWindowBytes(s.pool === 'round-robin' ? members : 1) : plain;
  if (plain === 'auto') log.debug({ bytes }, '--tcp-resend-window auto');
  const gaveUp = () => log.warn({ replays: END_REPLAYS }, 'the drain lost every connection made after the end of input to send its --tcp-resend-window again; giving up on it');
  return bytes > 0 ? new ResendWindow(bytes, gaveUp) : undefined;
}
