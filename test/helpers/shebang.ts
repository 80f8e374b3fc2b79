import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * bin/auditfwd's #! line (`/usr/bin/env -S [-u NAME]… NAME=VALUE… node FLAGS…`): the variables it
 * takes out of the environment, those it sets, and node's flags.
 */
export function shebangOf(path = fileURLToPath(new URL('../../bin/auditfwd', import.meta.url))): { unset: string[]; env: Record<string, string>; flags: string[] } {
  const words = readFileSync(path, 'utf8').split('\n')[0].split(' ');
  const node = words.indexOf('node');
  if (words[0] !== '#!/usr/bin/env' || words[1] !== '-S' || node < 0) throw new Error(`${path}: not an "env -S … node" #! line`);
  const unset: string[] = [];
  let i = 2;
  for (; words[i] === '-u'; i += 2) unset.push(words[i + 1]);
  const env = Object.fromEntries(words.slice(i, node).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { unset, env, flags: words.slice(node + 1) };
}
