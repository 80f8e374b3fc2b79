/** A producer of batches. `run` resolves when the source is exhausted (end of stdin, --once) or stopped. */
export interface Source {
  readonly name: string;
  run(): Promise<void>;
  /** Stop reading soon; what was read is still pushed. */
  stop(): void;
  /** Bytes in the source not yet handed on (file size minus committed position), for metrics. */
  lag?(): Promise<number>;
  /** A source made of several (every --file): the lag of each, by name. */
  lags?(): Promise<Map<string, number>>;
}
