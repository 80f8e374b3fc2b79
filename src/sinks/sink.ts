import type { BatchBuffer } from '../batch.js';

export type Framing = 'octet-counting' | 'lf';

/** Sends batches from the buffer to the drain, reporting each one handed on. */
export interface Sink {
  /** Resolves once the buffer is finished (closed, empty, every batch handed on) and the output closed. */
  run(buffer: BatchBuffer): Promise<void>;
  /** Stop at once (shutdown deadline): batches not yet written stay unacknowledged. */
  abort(): void;
}
