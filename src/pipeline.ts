import { basename, dirname, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { MemoryBuffer } from './buffer/memory.js';
import type { Config } from './config/config.js';
import { Rfc5424Framer } from './framing/rfc5424.js';
import type { Logger } from './ops/log.js';
import { Stats } from './ops/stats.js';
import { Backoff } from './sinks/backoff.js';
import { describeDestination } from './sinks/destination.js';
import type { Sink } from './sinks/sink.js';
import { RelpSink } from './sinks/relp.js';
import { StreamSink } from './sinks/stdout.js';
import { TcpSink } from './sinks/tcp.js';
import { FileTailer } from './sources/file/tailer.js';
import type { Source } from './sources/source.js';
import { StreamSource } from './sources/stdin.js';
import { CheckpointStore } from './state/checkpoints.js';
import { RawEncoder, type EncoderFactory } from './transforms/encoder.js';

export interface Io {
  stdin: Readable;
  stdout: Writable;
}

/** The one place that knows every part: sources → encoder → buffer → sink, and commits flowing back. */
export class Pipeline {
  readonly stats = new Stats();
  private sources: Source[] = [];
  private sink!: Sink;
  private buffer!: MemoryBuffer;
  private checkpoints: CheckpointStore | undefined;
  private stopping = false;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
    private readonly io: Io,
  ) {}

  private encoderFactory(): EncoderFactory {
    const { cfg, stats } = this;
    return (appName) =>
      new RawEncoder(
        new Rfc5424Framer({
          facility: cfg.facility,
          severity: cfg.severity,
          hostname: cfg.hostname,
          appName,
          maxMessageBytes: cfg.maxMessageBytes,
        }),
        stats,
      );
  }

  private createSink(): Sink {
    const { cfg, stats, log } = this;
    const to = cfg.to;
    if (to.transport === 'stdout') return new StreamSink(this.io.stdout, cfg.framing, stats);
    if (to.transport === 'relp') {
      return new RelpSink({
        host: to.host,
        port: to.port,
        stats,
        log,
        backoff: new Backoff(200, cfg.reconnectMaxDelayMs),
        window: cfg.relpWindow,
        ackTimeoutMs: cfg.relpAckTimeoutMs,
        maxRefusals: cfg.relpMaxRefusals,
      });
    }
    return new TcpSink({
      host: to.host,
      port: to.port,
      framing: cfg.framing,
      stats,
      log,
      backoff: new Backoff(200, cfg.reconnectMaxDelayMs),
    });
  }

  async run(): Promise<void> {
    const { cfg, log } = this;
    const encoderFor = this.encoderFactory();
    this.buffer = new MemoryBuffer(cfg.memoryMaxBytes);
    this.sink = this.createSink();
    const files = cfg.files.filter((f) => f !== '-');
    if (files.length > 0) {
      this.checkpoints = await CheckpointStore.open(cfg.stateDir, log);
      this.checkpoints.startAutosave(cfg.checkpointIntervalMs);
    }
    for (const file of files) {
      const path = resolve(file);
      this.sources.push(
        new FileTailer(path, {
          encoder: encoderFor(cfg.appName ?? basename(dirname(path))),
          buffer: this.buffer,
          stats: this.stats,
          checkpoints: this.checkpoints,
          log,
          startAt: cfg.startAt,
          once: cfg.once,
          pollMs: cfg.pollMs,
          maxLineBytes: cfg.maxMessageBytes,
        }),
      );
    }
    if (files.length === 0 || cfg.files.includes('-')) {
      this.sources.push(new StreamSource('stdin', this.io.stdin, encoderFor(cfg.appName ?? 'auditfwd'), this.buffer, this.stats, cfg.maxMessageBytes));
    }
    log.info({ to: describeDestination(cfg.to), sources: this.sources.map((s) => s.name) }, 'auditfwd started');

    const sinkDone = this.sink.run(this.buffer);
    const sourcesDone = Promise.all(this.sources.map((s) => s.run())).finally(() => this.buffer.close());
    try {
      await Promise.all([sourcesDone, sinkDone]);
    } finally {
      await this.checkpoints?.close();
    }
    log.info(
      { messages: this.stats.messagesSent, bytes: this.stats.bytesSent, truncated: this.stats.linesTruncated, resent: this.stats.messagesResent, refused: this.stats.messagesRefused, dropped: Object.fromEntries(this.stats.dropped) },
      this.stopping ? 'stopped' : 'all input delivered',
    );
  }

  /**
   * Graceful stop: sources stop reading, what is in memory goes to the drain until the deadline,
   * then the sink is cut off. Positions were only ever committed for data handed on, so whatever
   * is cut off is read again at the next start.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ deadlineMs: this.cfg.shutdownTimeoutMs }, 'stopping');
    for (const s of this.sources) s.stop();
    this.buffer?.close();
    const deadline = setTimeout(() => {
      this.log.warn({ unsentBytes: this.buffer.bytes }, 'shutdown deadline reached; unsent data is read again at the next start');
      this.sink.abort();
    }, this.cfg.shutdownTimeoutMs);
    deadline.unref();
  }
}
