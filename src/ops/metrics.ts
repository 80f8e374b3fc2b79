import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { MemberStats, Stats } from '../telemetry/stats.js';

/** What the metrics read; the Pipeline provides it. */
export interface MetricsSource {
  readonly stats: Stats;
  readonly bufferState: { bytes: number; spillBytes?: number; fullSinceMs?: number; spillProblem?: unknown };
  lags(): Promise<Map<string, number>>;
}

/**
 * Prometheus metrics, read from the pipeline's plain counters at scrape time: the hot path only
 * ever increments numbers, never touches prom-client.
 */
export function createMetrics(p: MetricsSource): Registry {
  const registry = new Registry();
  const s = p.stats;
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  const byLabel = (name: string, help: string, label: string, values: () => Map<string, number>) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [k, v] of values()) this.inc({ [label]: k }, v);
      },
    });

  byLabel('auditfwd_lines_read_total', 'Complete lines read, per file (stdin: "stdin")', 'file', () => s.linesRead);
  byLabel('auditfwd_nul_bytes_skipped_total', 'NUL bytes skipped in a followed file, never sent (a copytruncate hole under a writer without O_APPEND)', 'file', () => s.nulBytesSkipped);
  byLabel('auditfwd_bytes_unread_total', 'Bytes of a followed file deleted (kube-apiserver maxbackup/maxage) before they were read, with no .gz to read them from; each range also goes to the drain as a gap record', 'file', () => s.bytesUnread);
  counter('auditfwd_messages_sent_total', 'Messages handed on to the drain', () => s.messagesSent);
  counter('auditfwd_bytes_sent_total', 'Bytes handed on to the drain, framing included', () => s.bytesSent);
  counter('auditfwd_messages_resent_total', 'Messages sent again after a connection ended: unacknowledged ones (RELP), the --tcp-resend-window (TCP/TLS)', () => s.messagesResent);
  byLabel('auditfwd_messages_dropped_total', 'Messages dropped, by reason', 'reason', () => s.dropped);
  counter('auditfwd_lines_truncated_total', 'Lines longer than --max-message-bytes, sent truncated', () => s.linesTruncated);
  byLabel('auditfwd_source_errors_total', 'Times a followed path could not be opened or read (a FIFO, a folder, an I/O error), per file', 'file', () => s.sourceErrors);
  byLabel('auditfwd_webhook_responses_total', 'Webhook requests answered, by HTTP status', 'code', () => new Map([...s.webhookResponses].map(([k, v]) => [String(k), v])));
  counter('auditfwd_reconnects_total', 'Connections to the drain after the first', () => s.reconnects);
  const perMember = (name: string, help: string, value: (m: MemberStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['member'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [member, m] of s.members) this.set({ member }, value(m));
      },
    });
  perMember('auditfwd_pool_member_up', 'Pool member (several --to): 1 while connected', (m) => (m.drainConnected ? 1 : 0));
  perMember('auditfwd_pool_member_active', 'Pool member: 1 while it takes batches (failover: the one in use; round-robin: every connected one)', (m) => (m.state === 'active' ? 1 : 0));
  const memberCounts = (value: (m: MemberStats) => number) => () => new Map([...s.members].map(([k, m]) => [k, value(m)]));
  byLabel('auditfwd_pool_member_connects_total', 'Pool member: connections made', 'member', memberCounts((m) => m.drainConnects));
  byLabel('auditfwd_pool_member_failures_total', 'Pool member: connects that failed and connections lost', 'member', memberCounts((m) => m.drainFailures));
  byLabel('auditfwd_pool_member_messages_sent_total', 'Pool member: messages handed on to it', 'member', memberCounts((m) => m.messagesSent));
  gauge('auditfwd_spill_bytes', 'Bytes held in the on-disk spill', () => p.bufferState.spillBytes ?? 0);
  gauge('auditfwd_buffer_bytes', 'Bytes held in memory between reading and the drain', () => p.bufferState.bytes);
  gauge('auditfwd_buffer_full', '1 while reading waits for room or lines are dropped (with a spill: the spill at --buffer-max-bytes)', () =>
    p.bufferState.fullSinceMs === undefined ? 0 : 1,
  );
  gauge('auditfwd_spill_unwritable', '1 while the spill cannot be written (disk full, I/O error, read-only, quota, folder gone): it stops growing', () =>
    p.bufferState.spillProblem === undefined ? 0 : 1,
  );
  counter('auditfwd_spill_unwritable_total', 'Times the spill became unwritable', () => s.spillUnwritable);
  gauge('auditfwd_drain_connected', '1 while connected to the drain', () => (s.drainConnected ? 1 : 0));
  gauge('auditfwd_last_send_timestamp_seconds', 'When data was last handed on to the drain (Unix time; 0: never)', () => s.lastSendMs / 1000);
  new Gauge({
    name: 'auditfwd_lag_bytes',
    help: 'Bytes in the file not yet handed on (file size minus committed position)',
    labelNames: ['file'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [file, lag] of await p.lags()) this.set({ file }, lag);
    },
  });
  collectDefaultMetrics({ register: registry });
  return registry;
}
