/** Counters the pipeline keeps; the metrics endpoint and the exit summary read them. */
export class Stats {
  linesRead = new Map<string, number>();
  messagesSent = 0;
  bytesSent = 0;
  /** Sent again after a connection ended: not acknowledged by the drain (RELP), or in the --tcp-resend-window (TCP/TLS). */
  messagesResent = 0;
  /** Answers other than 200 from a RELP drain, each counted (a retried message may count more than once). */
  messagesRefused = 0;
  linesTruncated = 0;
  dropped = new Map<string, number>();
  reconnects = 0;
  /** Connections made to the drain (every pool member), and connects that failed or connections lost. */
  drainConnects = 0;
  drainFailures = 0;
  /** Per pool member (`--to` given more than once, or a name with several addresses); empty for one drain. */
  members = new Map<string, MemberStats>();
  lastSendMs = 0;
  /** k8s-audit/auto: lines read as audit Events, and lines that were not (forwarded as raw). */
  auditEvents = 0;
  nonEventLines = 0;
  /** Webhook requests answered, by HTTP status. */
  webhookResponses = new Map<number, number>();
  /** Followed paths that could not be opened or read (a FIFO, a folder, EIO), per path. */
  sourceErrors = new Map<string, number>();
  /** NUL bytes skipped in followed files, per file (holes a copytruncate leaves under a writer without O_APPEND). */
  nulBytesSkipped = new Map<string, number>();
  /** Bytes of followed files deleted before they were read (per followed path): each range also a gap record. */
  bytesUnread = new Map<string, number>();
  /** Damaged records found in the disk spill. */
  spillCorrupt = 0;
  /** Times the disk spill could not be written and stopped growing (ENOSPC, EIO, ...). */
  spillUnwritable = 0;
  /** When the drain last connected or disconnected: /healthz tells how long it has been down. */
  drainChangedMs = Date.now();
  /** Why the drain is taken as unreachable when it is up but refuses (NATS: no stream captures the subject); /healthz says it. */
  drainProblem: string | undefined;
  private connected = false;

  get drainConnected(): boolean {
    return this.connected;
  }
  set drainConnected(up: boolean) {
    if (up !== this.connected) this.drainChangedMs = Date.now();
    this.connected = up;
  }

  addLines(source: string, n: number): void {
    this.linesRead.set(source, (this.linesRead.get(source) ?? 0) + n);
  }
  addNulSkipped(source: string, n: number): void {
    this.nulBytesSkipped.set(source, (this.nulBytesSkipped.get(source) ?? 0) + n);
  }
  addBytesUnread(source: string, n: number): void {
    this.bytesUnread.set(source, (this.bytesUnread.get(source) ?? 0) + n);
  }
  addWebhookResponse(status: number): void {
    this.webhookResponses.set(status, (this.webhookResponses.get(status) ?? 0) + 1);
  }
  addSourceError(source: string): void {
    this.sourceErrors.set(source, (this.sourceErrors.get(source) ?? 0) + 1);
  }
  addDropped(reason: string, n: number): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + n);
  }
}

/** What a sink updates: the pipeline's Stats, or a pool member's MemberStats (which add up into them). */
export type SinkStats = Pick<Stats, 'messagesSent' | 'bytesSent' | 'lastSendMs' | 'messagesResent' | 'messagesRefused' | 'reconnects' | 'drainConnected' | 'drainConnects' | 'drainFailures' | 'addDropped'>;

/** Counters a pool member keeps of its own and adds into the pipeline's totals. */
const SUMMED = ['messagesSent', 'bytesSent', 'messagesResent', 'messagesRefused', 'reconnects', 'drainConnects', 'drainFailures'] as const;
type Summed = (typeof SUMMED)[number];

/**
 * One pool member's counters. Each update also goes to the pipeline's totals, so the sinks stay
 * unaware of the pool; whether the pipeline counts as connected is the pool's call (any member up).
 */
export class MemberStats implements SinkStats {
  /** active: takes batches; standby: connected, waits its turn (failover); down: not connected. */
  state: 'active' | 'standby' | 'down' = 'down';
  declare messagesSent: number;
  declare bytesSent: number;
  declare messagesResent: number;
  declare messagesRefused: number;
  declare reconnects: number;
  declare drainConnects: number;
  declare drainFailures: number;
  private readonly own: Record<Summed, number> = Object.fromEntries(SUMMED.map((k) => [k, 0])) as Record<Summed, number>;
  private up = false;

  constructor(
    private readonly total: Stats,
    private readonly onConnected: () => void,
  ) {}

  get lastSendMs(): number {
    return this.total.lastSendMs;
  }
  set lastSendMs(v: number) {
    this.total.lastSendMs = v;
  }
  get drainConnected(): boolean {
    return this.up;
  }
  set drainConnected(v: boolean) {
    if (v === this.up) return;
    this.up = v;
    this.onConnected();
  }
  addDropped(reason: string, n: number): void {
    this.total.addDropped(reason, n);
  }

  static {
    for (const key of SUMMED) {
      Object.defineProperty(MemberStats.prototype, key, {
        get(this: MemberStats) {
          return this.own[key];
        },
        set(this: MemberStats, v: number) {
          this.total[key] += v - this.own[key];
          this.own[key] = v;
        },
      });
    }
  }
}
