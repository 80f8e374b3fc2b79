const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "65536", "64KiB", "64k", "1.5MiB" → bytes; undefined when not a size. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? Math.floor(text) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  return unit === undefined ? undefined : Math.floor(Number(m[1]) * unit);
}

/**
 * "250ms", "2s", "5m", "1h" → ms; undefined when not a duration. A bare number other than 0 is not
 * one: `5` would be 5 ms to one reader and 5 s to the next.
 */
export function parseDuration(text: string | number): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(String(text));
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) return undefined;
  return Number(m[1]) * TIME_UNITS[(m[2] ?? 'ms').toLowerCase()];
}

/** Why `text` is not a duration, for the error message. */
export function durationProblem(text: string | number): string {
  const s = String(text).trim();
  if (/^-/.test(s)) return 'is negative: durations are 0 or more (e.g. 0, 250ms, 5s)';
  if (/^\d+(\.\d+)?$/.test(s)) return `needs a unit: ${s}ms, ${s}s or ${s}m`;
  return 'is not a duration (e.g. 250ms, 5s, 1m)';
}
