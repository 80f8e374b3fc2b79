import { basename, dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { MemoryBuffer } from './buffer/memory.js';
import { SpillBuffer, type SpillProblem } from './buffer/spill/spill-buffer.js';
import type { Config } from './config/config.js';
import { Rfc5424Framer } from './framing/rfc5424.js';
import type { Logger } from './telemetry/log.js';
import { Stats } from './telemetry/stats.js';
import { Backoff } from './sinks/backoff.js';
import { describeDestination } from './sinks/destination.js';
import { membersOf, watchMembers, type Drain, type Member } from './sinks/resolve.js';
import type { Sink } from './sinks/sink.js';
import { StreamSink } from './sinks/stream.js';
import { drainSink } from './sinks/drains.js';
import { writeCarefullyUntil } from './sinks/write-loop.js';
import { boundHeap, HeapBound, v8Heap } from './ops/heap-bound.js';
import { FileSources } from './sources/file/sources.js';
import { tlsOpener } from './sinks/tls.js';
import { TlsMaterial } from './sinks/tls-material.js';
import type { Source } from './sources/source.js';
import { StreamSource } from './sources/stream.js';
import type { BatchBuffer } from './batch.js';
import { CheckpointStore } from './state/checkpoints.js';
import { RawEncoder, type EncoderFactory } from './transforms/encoder.js';
import { SwappableEncoder } from './transforms/swappable.js';
import { RateLimitedLog } from './telemetry/log.js';
import { Deduper } from './transforms/dedupe.js';
import { K8sAuditEncoder } from './transforms/k8s-audit.js';
import { EventFilter } from './transforms/selector.js';

/**
 * EX_TEMPFAIL: not everything read was delivered. Input ended but the drain stayed away (what is
 * left waits in the spill for the next run), or lines held only in memory (stdin or webhook without
 * a spill) were given up at --exit-timeout or the shutdown deadline.
 */
export const EXIT_NOT_DELIVERED = 75;

export interface Io {
  stdin: Readable;
  stdout: Writable;
}

/** The one place that knows every part: sources → encoder → buffer → sink, and commits flowing back. */
export class Pipeline {
  readonly stats = new Stats();
  private sources: Source[] = [];
  private sink!: Sink;
  private buffer!: BatchBuffer;
  private memory: MemoryBuffer | undefined;
  private spill: SpillBuffer | undefined;
  exitCode = 0;
  private checkpoints: CheckpointStore | undefined;
  private stopping = false;
  /** The shutdown deadline passed: the sink is cut off, also one created after it. */
  private cutOff = false;
  private started = false;
  private encoders: Array<{ appName: string; encoder: SwappableEncoder<Config> }> = [];
  private tlsMaterial: TlsMaterial | undefined;
  /** Loaded only for a NATS destination: the client costs RSS a syslog forwarder does not need. */
  private natsSink: typeof import('./sinks/nats.js').NatsSink | undefined;

  constructor(
    private cfg: Config,
    private readonly log: Logger,
    private readonly io: Io,
  ) {}

  /** Gap records (what was dropped or never read) come from auditfwd itself, at warning severity. */
  private gapFramer(): Rfc5424Framer {
    return new Rfc5424Framer({ facility: this.cfg.facility, severity: 4, hostname: this.cfg.hostname, appName: 'auditfwd', maxMessageBytes: 64 * 1024 });
  }

  private encoderFactory(): EncoderFactory {
    const { cfg, stats } = this;
    const framer = (appName: string) =>
      new Rfc5424Framer({
        facility: cfg.facility,
        severity: cfg.severity,
        hostname: cfg.hostname,
        appName,
        maxMessageBytes: cfg.maxMessageBytes,
        structuredData: cfg.structuredData,
      });
    const { k8s } = cfg;
    if (k8s.format === 'raw') return (appName) => new RawEncoder(framer(appName), stats);
    // One filter, one dedupe memory and one warning limiter for every source: the same event
    // arriving by file and by webhook must meet the same memory.
    const filter = new EventFilter(k8s.select, k8s.exclude);
    const shared = {
      format: k8s.format,
      sdId: k8s.sdId,
      filter: filter.active ? filter : undefined,
      dedupe: k8s.dedupe ? new Deduper(k8s.dedupe.maxEntries, k8s.dedupe.windowMs) : undefined,
      warn: new RateLimitedLog(this.log),
    };
    return (appName) => new K8sAuditEncoder(framer(appName), stats, shared);
  }

  /** The sink for the current settings; names with several addresses are looked up first (a pool of their own). */
  private async makeSink(): Promise<Sink> {
    // NATS seeds are the client's own cluster list: never a pool of members.
    const drains = this.cfg.nats ? [] : this.cfg.destinations.filter((d): d is Drain => d.transport !== 'stdout');
    const members = drains.length ? await membersOf(drains) : [];
    this.stopDnsWatch();
    // A name's addresses change: the sink is made again for them, as a reload would.
    this.stopDnsWatch = watchMembers(drains, members, (now) => {
      this.log.info({ members: now.map((m) => m.name) }, 'DNS: the drains resolve to other addresses; reconnecting');
      this.replaceSink(this.createSink(now));
    });
    return this.createSink(members);
  }

  private stopDnsWatch: () => void = () => {};

  /** The new sink is in place before the old one stops: runSinks then goes on with it. */
  private replaceSink(sink: Sink): void {
    if (this.stopping) return;
    const old = this.sink;
    this.sink = sink;
    old.abort();
  }

  private createSink(members: Member[]): Sink {
    const { cfg, stats, log } = this;
    // A reload may change the pool: the metrics show the members of the sink in use.
    stats.members.clear();
    const to = cfg.to;
    if (to.transport === 'stdout') return new StreamSink(this.io.stdout, cfg.framing, stats);
    if (cfg.nats && this.natsSink) {
      return new this.natsSink({
        ...cfg.nats,
        sdId: cfg.k8s.format === 'raw' ? undefined : cfg.k8s.sdId,
        stats,
        log,
        backoff: new Backoff(200, cfg.reconnectMaxDelayMs),
        reconnectMaxDelayMs: cfg.reconnectMaxDelayMs,
      });
    }
    this.tlsMaterial = to.transport === 'tls' || to.transport === 'relp+tls' ? new TlsMaterial(cfg.tls!, log) : undefined;
    return drainSink(members, cfg, this.tlsMaterial ? tlsOpener(this.tlsMaterial, log) : undefined, stats, log);
  }

  /**
   * SIGHUP: re-reads what may change on disk while running (today: TLS certificates and keys; the next
   * connection uses them). A config-file reload can call this too. Returns false if something failed to load.
   */
  reload(): boolean {
    if (!this.tlsMaterial) {
      this.log.info('reload: nothing to re-read');
      return true;
    }
    return this.tlsMaterial.reload();
  }

  async run(): Promise<void> {
    const { cfg, log } = this;
    const encoderFor = this.reloadableEncoders();
    if (cfg.bufferDir) {
      this.spill = await SpillBuffer.open({
        dir: cfg.bufferDir,
        maxBytes: cfg.bufferMaxBytes,
        memoryMaxBytes: cfg.memoryMaxBytes,
        fsyncIntervalMs: cfg.spillFsyncIntervalMs,
        whenFull: cfg.whenFull,
        log,
        stats: this.stats,
        gapFramer: this.gapFramer(),
      });
    }
    if (!this.spill) this.memory = new MemoryBuffer(cfg.memoryMaxBytes);
    this.buffer = this.spill ?? this.memory!;
    if (cfg.nats) this.natsSink = (await import('./sinks/nats.js')).NatsSink;
    this.sink = await this.makeSink();
    const files = cfg.files.filter((f) => f !== '-');
    if (files.length > 0) {
      this.checkpoints = await CheckpointStore.open(cfg.stateDir, log);
      if (this.checkpoints.lastRunDied) log.warn({ dir: cfg.stateDir }, 'the last run did not stop cleanly (kill -9, the OOM killer, a power loss?)');
      // A following run's first seconds: it may be in a crash loop (see writeCarefullyUntil).
      if (!cfg.once) writeCarefullyUntil(cfg.carefulStartMs);
      if (cfg.ignorePositions) {
        const saved = this.checkpoints.all();
        for (const c of saved) this.checkpoints.forget(c);
        if (saved.length > 0) log.info({ positions: saved.length }, '--ignore-positions: saved read positions not used; files start at --start-at');
      }
      this.checkpoints.startAutosave(cfg.checkpointIntervalMs);
      this.sources.push(
        new FileSources(files, {
          encoderFor: (path) => encoderFor(cfg.appName ?? basename(dirname(path))),
          buffer: this.buffer,
          stats: this.stats,
          checkpoints: this.checkpoints,
          log,
          startAt: cfg.startAt,
          once: cfg.once,
          pollMs: cfg.pollMs,
          maxLineBytes: cfg.maxMessageBytes,
          // One read is one batch, and a batch enters memory whole: a small --memory-max-bytes reads less at a time.
          readChunkBytes: Math.max(4096, Math.min(512 * 1024, Math.floor(cfg.memoryMaxBytes / 8))),
          maxFiles: cfg.maxFiles,
          rotateWaitMs: cfg.rotateWaitMs,
          rescanMs: cfg.globRescanIntervalMs,
          retireWhenGoneMs: cfg.forgetAfterMs,
          // JetStream drops a line sent twice by its Nats-Msg-Id: the file and offset it came from.
          messageKeys: cfg.nats !== undefined,
          gapFramer: this.gapFramer(),
        }),
      );
    }
    const webhook = cfg.k8s.webhook;
    if (webhook) {
      // Loaded only when configured: node:http and node:https cost RSS that a file forwarder does not need.
      const { WebhookSource } = await import('./sources/webhook.js');
      this.sources.push(
        new WebhookSource({
          ...webhook,
          encoder: encoderFor(cfg.appName ?? 'kube-apiserver'),
          buffer: this.buffer,
          stats: this.stats,
          log,
        }),
      );
    }
    if ((files.length === 0 && !webhook) || cfg.files.includes('-')) {
      this.sources.push(new StreamSource('stdin', this.io.stdin, encoderFor(cfg.appName ?? 'auditfwd'), this.buffer, this.stats, cfg.maxMessageBytes));
    }
    log.info({ to: cfg.destinations.length > 1 ? cfg.destinations.map(describeDestination) : describeDestination(cfg.to), ...(cfg.destinations.length > 1 && { pool: cfg.pool }), sources: this.sources.map((s) => s.name) }, 'auditfwd started');
    // A SIGTERM during start-up (the spill's recovery, the state file) came before there was anything to stop.
    if (this.stopping) {
      for (const s of this.sources) s.stop();
      this.buffer.close();
      if (this.cutOff) this.sink.abort();
    }

    this.started = true;
    const stopHeapBound = cfg.heapSlackBytes > 0 ? boundHeap(new HeapBound(v8Heap(), cfg.heapSlackBytes)) : () => {};
    const sinkDone = this.runSinks();
    let exitTimer: NodeJS.Timeout | undefined;
    const sourcesDone = Promise.all(this.sources.map((s) => s.run())).finally(() => {
      this.buffer.close();
      // Input ended: the drain gets --exit-timeout to take the rest, spill or not.
      if (!this.stopping) exitTimer = setTimeout(() => this.giveUp(), cfg.exitTimeoutMs);
    });
    let lost: { lines: number; bytes: number } | undefined;
    try {
      await Promise.all([sourcesDone, sinkDone]);
    } finally {
      clearTimeout(exitTimer);
      stopHeapBound();
      this.stopDnsWatch();
      const left = await this.spill?.shutdown();
      if (left && left.bytes > 0) log.warn({ dir: cfg.bufferDir, bytes: left.bytes, segments: left.segments }, 'left in the spill; sent first at the next start');
      // Without a spill only stdin and the webhook feed the buffer: neither can be read again.
      if (this.memory && this.memory.messages > 0) {
        lost = { lines: this.memory.messages, bytes: this.memory.bytes };
        this.exitCode = EXIT_NOT_DELIVERED;
        log.error({ ...lost, sources: this.sources.map((s) => s.name) }, `not delivered: ${lost.lines} lines (${lost.bytes} bytes) held only in memory; they are lost (stdin and webhook input is not kept for a next start)`);
      }
      await this.checkpoints?.close();
    }
    log.info(
      {
        messages: this.stats.messagesSent,
        bytes: this.stats.bytesSent,
        truncated: this.stats.linesTruncated,
        ...((cfg.to.transport === 'relp' || cfg.to.transport === 'relp+tls') && { refused: this.stats.messagesRefused }),
        // Sent again: not acknowledged (RELP), the --tcp-resend-window (TCP/TLS); NATS: acknowledged by JetStream as duplicates (stored once).
        ...(cfg.to.transport !== 'stdout' && { resent: this.stats.messagesResent }),
        ...(cfg.k8s.format !== 'raw' && { auditEvents: this.stats.auditEvents, nonEventLines: this.stats.nonEventLines }),
        ...(webhook && { webhookResponses: Object.fromEntries(this.stats.webhookResponses) }),
        ...(this.stats.dropped.size > 0 && { dropped: Object.fromEntries(this.stats.dropped) }),
      },
      this.stopping ? 'stopped' : lost ? 'input ended; not everything was delivered' : this.exitCode === EXIT_NOT_DELIVERED ? 'input ended; the rest waits in the spill' : 'all input delivered',
    );
  }

  private giveUp(): void {
    this.exitCode = EXIT_NOT_DELIVERED;
    const fate = this.spill ? 'leaving the rest in the spill' : 'giving up on the rest';
    this.log.warn({ waitedMs: this.cfg.exitTimeoutMs, unsentBytes: this.buffer.bytes }, `input ended but the drain did not take everything within --exit-timeout; ${fate}`);
    this.sink.abort();
  }

  /** Encoders that a reload can replace between two batches. */
  private reloadableEncoders(): EncoderFactory {
    // One factory for every source: it holds what they share (the dedupe memory, the filter).
    const factory = this.encoderFactory();
    return (appName) => {
      const encoder = new SwappableEncoder<Config>(factory(appName));
      this.encoders.push({ appName, encoder });
      return encoder;
    };
  }

  /** Runs the sink; when a reload replaced it, runs the new one on the same buffer. */
  private async runSinks(): Promise<void> {
    for (;;) {
      const sink = this.sink;
      await sink.run(this.buffer);
      if (sink === this.sink) return;
    }
  }

  /**
   * Applies a reloaded configuration. `sink`: reconnect with the new destination or TLS material;
   * batches not yet written to the old connection are requeued for the new one. `encoders`:
   * messages read from now on are encoded with the new settings.
   */
  reconfigure(cfg: Config, what: { sink: boolean; encoders: boolean }): void {
    this.cfg = cfg;
    if (what.encoders) {
      const factory = this.encoderFactory();
      for (const { appName, encoder } of this.encoders) encoder.reconfigure(cfg, () => factory(appName));
    }
    if (what.sink && cfg.nats && !this.natsSink) {
      // The NATS client is loaded, and files give their lines keys, only when started that way.
      this.log.warn({ to: describeDestination(cfg.to) }, 'reload: switching to a NATS destination takes effect only after a restart');
    } else if (what.sink && this.sink && !this.stopping) {
      void this.makeSink().then((sink) => this.replaceSink(sink));
    }
  }

  /** Per source, bytes not yet handed on. */
  async lags(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const s of this.sources) {
      if (s.lags) for (const [name, lag] of await s.lags()) out.set(name, lag);
      else if (s.lag) out.set(s.name, await s.lag());
    }
    return out;
  }

  get phase(): 'starting' | 'running' | 'stopping' {
    return this.stopping ? 'stopping' : this.started ? 'running' : 'starting';
  }

  get bufferState(): { bytes: number; fullSinceMs?: number; spillBytes: number; spillProblem?: SpillProblem } {
    // bytes: memory only (the spill's disk bytes are spillBytes), so it stays within --memory-max-bytes.
    return {
      bytes: this.spill?.memoryBytes ?? this.buffer?.bytes ?? 0,
      fullSinceMs: this.buffer?.fullSinceMs,
      spillBytes: this.spill?.spilledBytes ?? 0,
      spillProblem: this.spill?.problem,
    };
  }

  get destination(): Config['to'] {
    return this.cfg.to;
  }

  get settings(): Readonly<Config> {
    return this.cfg;
  }

  /**
   * Graceful stop: sources stop reading, what is in memory goes to the drain until the deadline,
   * then the sink is cut off. Positions were only ever committed for data handed on, so what a file
   * source had not handed on is read again at the next start; a spill keeps the rest on disk; stdin
   * and webhook lines held only in memory are lost, counted at the end of run().
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopDnsWatch();
    this.log.info({ deadlineMs: this.cfg.shutdownTimeoutMs }, 'stopping');
    for (const s of this.sources) s.stop();
    this.buffer?.close();
    const deadline = setTimeout(() => {
      this.cutOff = true;
      this.log.warn({ unsentBytes: this.buffer?.bytes ?? 0 }, 'shutdown deadline reached; cutting the drain off');
      this.sink?.abort();
    }, this.cfg.shutdownTimeoutMs);
    deadline.unref();
  }
}
