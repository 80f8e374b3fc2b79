import { statSync } from 'node:fs';
import { seqOf } from './fixtures.js';

/** Bytes in a relay's output file so far (0 before it exists). */
export function outputBytes(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Which numbered input lines (numberedAuditLines) rsyslog wrote, how often: `seen[k]` per line.
 * A kill -9 inside rsyslog's write(2) leaves the start of a line it had not acknowledged, to which
 * the restarted rsyslog appends the next message: such a torn start is counted in `torn`, not as
 * delivered. Anything else that is not an input line is in `bad`.
 */
export function countDelivered(got: string[], lines: string[]): { seen: Uint32Array; bad: string[]; torn: number; lost: number; repeats: number } {
  const n = lines.length;
  const seen = new Uint32Array(n);
  const bad: string[] = [];
  let torn = 0;
  const whole = (s: string) => {
    const k = seqOf(s);
    return k >= 0 && k < n && s === lines[k] ? k : -1;
  };
  for (const line of got) {
    let k = whole(line);
    if (k < 0) {
      const at = line.indexOf('{"seq":', 1);
      const head = at > 0 ? line.slice(0, at) : line;
      k = at > 0 ? whole(line.slice(at)) : -1;
      const h = seqOf(head);
      if (k >= 0 && h >= 0 && h < n && lines[h].startsWith(head)) torn++;
      else {
        bad.push(line.slice(0, 200));
        continue;
      }
    }
    seen[k]++;
  }
  const lost = seen.reduce((a, c) => a + (c === 0 ? 1 : 0), 0);
  return { seen, bad, torn, lost, repeats: got.length - bad.length - (n - lost) };
}
