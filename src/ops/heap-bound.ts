import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const CHECK_EVERY_MS = 100;

export interface HeapProbe {
  /** Bytes of the heap in use, garbage not yet collected included. */
  used(): number;
  /** A full collection. */
  collect(): void;
}

/**
 * V8's own. `gc` is global with --expose-gc (bin/auditfwd's #! line, the image, the BOSH job and the
 * Kubernetes example pass it). Run otherwise, the flag is set now, and `gc` taken from a new
 * context, where V8 installs it: that context costs about 0.5 MB.
 */
export function v8Heap(): HeapProbe {
  const collect = fullCollection();
  return { used: () => getHeapStatistics().used_heap_size, collect: () => collect() };
}

let madeGc: (() => void) | undefined;

function fullCollection(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') return gc;
  if (!madeGc) {
    setFlagsFromString('--expose-gc');
    madeGc = runInNewContext('gc') as () => void;
  }
  return madeGc;
}

/**
 * Asks for a full collection whenever the heap grew by `slackBytes` (--heap-slack-bytes) since the last one. At full
 * speed, objects that outlive two scavenges of the 1 MB young generation (a batch's state while it
 * is in the memory buffer and the resend window) die in the old generation, and V8 lets that gather
 * 8 MB or more of garbage before it collects: peak RSS grew with the input forwarded, 60.3 MB after
 * 500 MB and 64.9 MB after 3 GB (docs/design.md, "A bounded heap"). A collection of this heap takes
 * 1-5 ms, and comes about twice per GB at full speed. A heap that grows because it holds more (a
 * dedupe window filling) is collected once per `slackBytes` of growth.
 */
export class HeapBound {
  private floor: number;

  constructor(
    private readonly probe: HeapProbe,
    private readonly slackBytes: number,
  ) {
    this.floor = probe.used();
  }

  /** Collects if the heap grew past the slack; true when it did. */
  check(): boolean {
    const used = this.probe.used();
    // Lower than after the last collection: V8 collected by itself.
    if (used < this.floor) this.floor = used;
    if (used - this.floor <= this.slackBytes) return false;
    this.probe.collect();
    this.floor = this.probe.used();
    return true;
  }
}

/** Checks the heap every 100 ms; the timer does not keep the process alive. Returns the stop. */
export function boundHeap(bound: HeapBound): () => void {
  const timer = setInterval(() => bound.check(), CHECK_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
