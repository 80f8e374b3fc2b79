import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** bin/auditfwd's #! line (`/usr/bin/env -S NAME=VALUE… node FLAGS…`): the environment it sets and node's flags. */
export function shebangOf(path = fileURLToPath(new URL('../../bin/auditfwd', import.meta.url))): { env: Record<string, string>; flags: string[] } {
  const words = readFileSync(path, 'utf8').split('\n')[0].split(' ');
  const node = words.indexOf('node');
  if (words[0] !== '#!/usr/bin/env' || words[1] !== '-S' || node < 0) throw new Error(`${path}: not an "env -S … node" #! line`);
  const env = Object.fromEntries(words.slice(2, node).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { env, flags: words.slice(node + 1) };
}
