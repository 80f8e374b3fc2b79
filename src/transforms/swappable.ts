import type { FrameWriter } from '../framing/frame-writer.js';
import type { Encoder } from './encoder.js';

/**
 * An encoder that applies reloaded settings itself, keeping its state (e.g. a dedupe cache). What the
 * settings are is the caller's business (the pipeline passes its configuration): this layer only hands them on.
 */
export interface Reloadable<Settings> {
  onReload(settings: Settings): void;
}

const isReloadable = <S>(e: unknown): e is Reloadable<S> => typeof (e as Partial<Reloadable<S>>).onReload === 'function';

/**
 * Lets SIGHUP change how lines are encoded without a restart. The change takes effect at the next
 * batch, never inside one, so a batch's messages are always encoded alike.
 */
export class SwappableEncoder<Settings> implements Encoder {
  private next: Encoder | undefined;

  constructor(private inner: Encoder) {}

  reconfigure(settings: Settings, rebuild: () => Encoder): void {
    if (isReloadable<Settings>(this.inner)) this.inner.onReload(settings);
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
