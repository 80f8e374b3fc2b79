import { join } from 'node:path';
import type { Logger } from '../telemetry/log.js';
import type { SinkStats, Stats } from '../telemetry/stats.js';
import { Backoff } from './backoff.js';
import type { Opener } from './connection.js';
import { PoolSink, type PoolMode } from './pool.js';
import { RelpSink, type RelpProgress } from './relp.js';
import { autoWindowBytes, END_REPLAYS, fileStore, memoryStore, ResendWindow } from './resend-window.js';
import { OWED_FILE, OwedFile } from './owed-file.js';
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
  /** file: in the buffer folder when there is one. */
  tcpResendWindowStore: 'file' | 'memory';
  relpWindow: number;
  relpAckTimeoutMs: number;
  relpMaxRefusals: number;
  /** The spill's folder: the resend window's file goes there (undefined: the window is in memory). */
  bufferDir: string | undefined;
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
  const sink = members.length === 1 ? make(members[0])(stats) : new PoolSink(
    members.map((m) => ({ name: m.name, make: make(m) })),
    s.pool,
    stats,
    log,
    () => resend?.owed() ?? false,
  );
  return resend ? closingWindow(sink, resend) : sink;
}

/** The window's file is closed once its sink is done (the end of input, or a reload's new sink took over). */
function closingWindow(sink: Sink, resend: ResendWindow): Sink {
  return {
    run: (buffer) => sink.run(buffer).finally(() => resend.close()),
    abort: () => sink.abort(),
  };
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
  if (bytes === 0) return undefined;
  const failed = (err: unknown, kept: boolean) =>
    kept
      ? log.warn({ dir: s.bufferDir, bytes, reason: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot keep the --tcp-resend-window in a file in the buffer folder; keeping it in memory')
      : log.error({ dir: s.bufferDir, bytes, reason: (err as NodeJS.ErrnoException).code ?? String(err) }, 'the --tcp-resend-window file failed and could not be read back; what it held is dropped, the window goes on in memory');
  const owed = s.bufferDir
    ? new OwedFile(join(s.bufferDir, OWED_FILE), (err) =>
        log.warn({ dir: s.bufferDir, reason: (err as NodeJS.ErrnoException).code ?? String(err) }, 'cannot keep what a lost connection owes in the buffer folder; it is sent again unless auditfwd stops first'),
      )
    : undefined;
  return new ResendWindow(bytes, gaveUp, s.bufferDir && s.tcpResendWindowStore === 'file' ? fileStore(s.bufferDir, failed) : memoryStore, owed);
}
