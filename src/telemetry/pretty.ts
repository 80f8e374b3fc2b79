import { writeSync } from 'node:fs';
import { isoTime } from '../framing/iso-time.js';

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '90'], 20: ['DEBUG', '36'], 30: ['INFO ', '32'], 40: ['WARN ', '33'], 50: ['ERROR', '31'], 60: ['FATAL', '35'],
};
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value …`. A dozen lines instead of
 * pino-pretty (a dev tool with a dozen dependencies of its own) for a daemon that is read on a
 * terminal only while someone tries it out.
 */
export function prettyLine(json: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const [name, code] = LEVELS[rec.level as number] ?? [String(rec.level), '0'];
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : isoTime(rec.time as number).slice(11, 23);
  const level = color ? `\x1b[${code}m${name}\x1b[0m` : name;
  let out = `${time} ${level} ${String(rec.msg ?? '')}`;
  for (const [k, v] of Object.entries(rec)) {
    if (HIDDEN.has(k)) continue;
    const text = typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v);
    out += color ? ` \x1b[2m${k}=\x1b[0m${text}` : ` ${k}=${text}`;
  }
  return out + '\n';
}

/** A synchronous pino destination writing readable lines to `fd`. */
export function prettyStream(fd: number, color: boolean): { write(line: string): void } {
  return {
    write(line: string) {
      writeSync(fd, prettyLine(line, color));
    },
  };
}
