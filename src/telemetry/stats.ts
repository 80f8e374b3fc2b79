/** Counters the pipeline keeps; the metrics endpoint and the exit summary read them. */
export class Stats {
  linesRead = new Map<string, number>();
  messagesSent = 0;
  bytesSent = 0;
  /** Sent again after a connection ended before the drain acknowledged them (RELP). */
  messagesResent = 0;
  /** Answers other than 200 from a RELP drain, each counted (a retried message may count more than once). */
  messagesRefused = 0;
  linesTruncated = 0;
  dropped = new Map<string, number>();
  reconnects = 0;
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
