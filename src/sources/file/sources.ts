import { stat } from 'node:fs/promises';
import type { CheckpointStore } from '../../state/checkpoints.js';
import type { Encoder } from '../../transforms/encoder.js';
import type { Source } from '../source.js';
import { expand, hasGlob } from './paths.js';
import { siblings } from './rotated.js';
import { gzipBackups } from './gzip-backups.js';
import { FileTailer, type TailerOptions } from './tailer.js';

export interface FileSourcesOptions extends Omit<TailerOptions, 'encoder'> {
  /** The encoder for one file (its APP-NAME is the file's parent folder unless set). */
  encoderFor: (path: string) => Encoder;
  /** At most this many files are followed at once; further matches wait for a free place. */
  maxFiles: number;
  /** How often globs are expanded again for new matches. */
  rescanMs: number;
  /** A glob match whose file has been gone this long stops being followed. */
  retireWhenGoneMs?: number;
}

/** Checkpoints untouched this long whose file is nowhere to be found are forgotten. */
const PRUNE_AFTER_MS = 60_000;

/**
 * Every `--file` path and glob: one FileTailer (own identity, own offsets, own APP-NAME) per matched
 * file, new glob matches picked up at each rescan, and checkpoints of files that are gone pruned.
 */
export class FileSources implements Source {
  readonly name = 'files';
  private readonly tailers = new Map<string, { tailer: FileTailer; done: Promise<void> }>();
  private stopped = false;
  private wakeRescan: (() => void) | undefined;
  private warnedFull = false;

  constructor(
    private readonly patterns: string[],
    private readonly opts: FileSourcesOptions,
  ) {}

  get paths(): string[] {
    return [...this.tailers.keys()];
  }

  /** Per followed file, bytes not yet handed on (for auditfwd_lag_bytes). */
  async lags(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const [path, { tailer }] of this.tailers) out.set(path, await tailer.lag());
    return out;
  }

  async run(): Promise<void> {
    await this.scan(true);
    const globs = this.patterns.some(hasGlob);
    let lastPrune = Date.now();
    while (!this.stopped && !this.opts.once) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.rescanMs);
        this.wakeRescan = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.stopped) break;
      if (globs) await this.scan(false);
      if (Date.now() - lastPrune >= PRUNE_AFTER_MS) {
        lastPrune = Date.now();
        await this.prune().catch((err) => this.opts.log.warn({ err: String(err) }, 'pruning checkpoints failed'));
      }
    }
    while (this.tailers.size > 0) await Promise.all([...this.tailers.values()].map((t) => t.done));
  }

  stop(): void {
    this.stopped = true;
    for (const { tailer } of this.tailers.values()) tailer.stop();
    this.wakeRescan?.();
  }

  private async scan(initial: boolean): Promise<void> {
    for (const pattern of this.patterns) {
      const glob = hasGlob(pattern);
      const matches = await expand(pattern, this.opts.maxFiles + this.tailers.size);
      if (glob && initial && matches.length === 0) this.opts.log.warn({ pattern }, 'no file matches yet; looking again every rescan');
      for (const path of matches) {
        if (this.tailers.has(path) || this.stopped) continue;
        if (this.tailers.size >= this.opts.maxFiles) {
          if (!this.warnedFull) this.opts.log.warn({ maxFiles: this.opts.maxFiles, path }, 'too many files to follow (--max-files); further matches wait');
          this.warnedFull = true;
          return;
        }
        // A file that appears after the start is read from its beginning whatever --start-at says:
        // all of it was written after we started looking.
        this.add(path, initial ? this.opts.startAt : 'beginning', glob);
      }
    }
  }

  private add(path: string, startAt: 'beginning' | 'end', glob: boolean): void {
    const { encoderFor, maxFiles: _m, rescanMs: _r, retireWhenGoneMs, ...common } = this.opts;
    const tailer = new FileTailer(path, { ...common, startAt, encoder: encoderFor(path), retireWhenGoneMs: glob ? retireWhenGoneMs : undefined });
    // Never an unhandled rejection: one path failing must not take the other sources down.
    const done = tailer.run().catch((err: NodeJS.ErrnoException) => {
      this.opts.stats.addSourceError(path);
      this.opts.log.error({ file: path, code: err.code, err: err.message }, 'following the file failed');
    }).finally(() => {
      this.tailers.delete(path);
      this.warnedFull = false;
      if (!this.stopped && !this.opts.once) this.opts.log.info({ file: path }, 'file gone; no longer followed');
    });
    this.tailers.set(path, { tailer, done });
  }

  /**
   * Retires checkpoints of files that are gone: not at their path, not under a rotated name next to
   * it, and not committed to for a while (a file still being read keeps committing).
   */
  private async prune(): Promise<void> {
    const store: CheckpointStore | undefined = this.opts.checkpoints;
    if (!store) return;
    const cutoff = Date.now() - PRUNE_AFTER_MS;
    for (const cp of store.all()) {
      if (cp.updatedAt > cutoff) continue;
      const st = await stat(cp.path).catch(() => undefined);
      if (st && st.dev === cp.dev && st.ino === cp.ino) continue;
      const near = [...(await siblings(cp.path)), ...(await gzipBackups(cp.path))];
      if (near.some((s) => s.st.dev === cp.dev && s.st.ino === cp.ino)) continue;
      store.retire(cp);
    }
  }
}
