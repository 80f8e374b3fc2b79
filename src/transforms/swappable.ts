import type { Config } from '../config/config.js';
import type { FrameWriter } from '../framing/frame-writer.js';
import type { Encoder } from './encoder.js';

/** An encoder that applies a reloaded configuration itself, keeping its state (e.g. a dedupe cache). */
export interface Reloadable {
  onReload(cfg: Config): void;
}

const isReloadable = (e: unknown): e is Reloadable => typeof (e as Partial<Reloadable>).onReload === 'function';

/**
 * Lets SIGHUP change how lines are encoded without a restart. The change takes effect at the next
 * batch, never inside one, so a batch's messages are always encoded alike.
 */
export class SwappableEncoder implements Encoder {
  private next: Encoder | undefined;

  constructor(private inner: Encoder) {}

  reconfigure(cfg: Config, rebuild: () => Encoder): void {
    if (isReloadable(this.inner)) this.inner.onReload(cfg);
    else this.next = rebuild();
  }

  beginBatch(): void {
    if (this.next) {
      this.inner = this.next;
      this.next = undefined;
    }
    this.inner.beginBatch();
  }

  encode(out: FrameWriter, line: Buffer, originalLength: number): number {
    return this.inner.encode(out, line, originalLength);
  }

  encodeParsed(out: FrameWriter, value: object, line: Buffer): number {
    return this.inner.encodeParsed ? this.inner.encodeParsed(out, value, line) : this.inner.encode(out, line, line.length);
  }
}
