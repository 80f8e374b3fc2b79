import { ConfigError } from './errors.js';
import { setting } from './options.js';
import { durationProblem, parseDuration, parseSize } from './units.js';

// The validators every settings module uses: one wording per kind of error, each naming the flag.

export const toKebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export function oneOf<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw new ConfigError(`--${flag}: "${value}" is not one of ${choices.join(', ')}`);
  return value as T;
}

/** A name from `table` (e.g. a syslog facility) or its number, 0-max. */
export function code(flag: string, value: string | number, table: Record<string, number>, max: number): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const n = Number(value);
    if (n >= 0 && n <= max) return n;
    throw new ConfigError(`--${flag}: ${value} is out of range (0-${max})`);
  }
  const n = table[value.toLowerCase()];
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" is not one of ${Object.keys(table).join(', ')} or 0-${max}`);
  return n;
}

export function size(flag: string, value: string | number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseSize(value);
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" ${/^\s*-/.test(String(value)) ? 'is negative' : 'is not a size'} (e.g. 65536, 64KiB, 16MiB)`);
  if (n < min || n > max) throw new ConfigError(`--${flag}: ${value} is out of range (${min}-${max} bytes)`);
  return n;
}

export function duration(flag: string, value: string | number, minMs: number, maxMs = Number.MAX_SAFE_INTEGER): number {
  const n = parseDuration(value);
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" ${durationProblem(value)}`);
  if (n < minMs) throw new ConfigError(`--${flag}: ${value} is below the minimum of ${minMs} ms`);
  if (n > maxMs) throw new ConfigError(`--${flag}: ${value} is above the maximum of ${maxMs} ms`);
  return n;
}

export function integer(flag: string, value: string | number, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n)) throw new ConfigError(`--${flag}: "${value}" is not a whole number`);
  if (n < min || n > max) throw new ConfigError(`--${flag}: ${value} is out of range (${min}-${max})`);
  return n;
}

/** HOST:PORT, [IPv6]:PORT or :PORT (every address) for a listener; port 0 picks a free one (it is logged). */
export function listenAddress(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]*)):(\d+)$/.exec(value);
  if (!m) throw new ConfigError(`--${flag}: "${value}" is not HOST:PORT (e.g. 127.0.0.1:9100, [::]:9100, :9100)`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`--${flag}: port ${m[3]} is out of range (0-65535)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A size, duration or integer setting, checked against the table's range (or `bounds`, when another setting sets it). */
export function numberSetting(flag: string, value: string | number, bounds: { min?: number; max?: number } = {}): number {
  const s = setting(flag);
  const min = bounds.min ?? s.min ?? 0;
  const max = bounds.max ?? s.max;
  if (s.kind === 'size') return size(flag, value, min, max);
  if (s.kind === 'duration') return duration(flag, value, min, max);
  if (s.kind === 'integer') return integer(flag, value, min, max!);
  throw new Error(`--${flag} is not a number setting`);
}

/** A number setting that also takes its table's `word` (e.g. `auto`), returned as it is. */
export function numberOrWord(flag: string, value: string | number): number | string {
  const word = setting(flag).word;
  if (word !== undefined && typeof value === 'string' && value.trim().toLowerCase() === word) return word;
  try {
    return numberSetting(flag, value);
  } catch (err) {
    if (word === undefined || !(err instanceof ConfigError) || parseSize(value) !== undefined) throw err;
    throw new ConfigError(`${err.message.replace(/\)$/, '')} or ${word})`);
  }
}

/** A setting that is one of the table's choices. */
export function choiceSetting<T extends string>(flag: string, value: string): T {
  return oneOf(flag, value, setting(flag).choices as readonly T[]);
}
