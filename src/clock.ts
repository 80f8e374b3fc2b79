/**
 * The process's clocks, without `performance`: the first use of that global loads perf_hooks and ten
 * internal modules of Node's (docs/design.md, "Clocks"). process.uptime() reads the same monotonic
 * clock performance.now() does.
 */

/** Milliseconds since the process started, monotonic. */
export const uptimeMs = (): number => process.uptime() * 1000;

/** When the process started, in milliseconds since the epoch. */
export const processStartMs = Date.now() - uptimeMs();

/**
 * Microseconds since the epoch, from a monotonic clock (`monoMicros`) for its resolution, moved back
 * to the wall clock (`wallMs`) whenever the two are more than 2 ms apart. The monotonic clock alone
 * stops while a VM is suspended and does not follow a stepped wall clock: every later TIMESTAMP
 * would lag by that much for the rest of the run.
 */
export function wallClock(monoMicros: () => number, wallMs: () => number): () => number {
  let anchor = wallMs() * 1000 - monoMicros();
  return () => {
    const mono = monoMicros();
    const wall = wallMs() * 1000;
    const t = anchor + mono;
    // Date.now() counts whole milliseconds, and the anchor may be one early: within 2 ms either way
    // it is the same time, and moving the anchor would only make the clock jitter.
    if (t >= wall - 2000 && t <= wall + 2000) return t;
    anchor = wall - mono;
    return wall;
  };
}

/** The wall clock TIMESTAMPs are written from. */
export const wallMicros = wallClock(() => process.uptime() * 1e6, Date.now);
