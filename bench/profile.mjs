#!/usr/bin/env node
// `npm run bench:profile [-- extra auditfwd flags]`: one raw --once run over the bench input under
// `node --cpu-prof`, to the bench receiver; prints where the CPU time went (self time per function,
// and per category) and keeps the .cpuprofile in bench/out/ for Chrome DevTools. The input file is
// built in a temporary folder and removed at the end.
// Environment: BENCH_MB (input size, default 100).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInput } from './lib/input.mjs';
import { startReceiver } from './lib/receiver.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const OUT = join(HERE, 'out');
const MB = Number(process.env.BENCH_MB ?? 100);

mkdirSync(OUT, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-profile-'));
const input = buildInput(dir, MB);
const receiver = await startReceiver({ count: 'frames' });
const done = receiver.expect(input.lines);
const t0 = performance.now();
// The same node flags and environment as bin/auditfwd's #! line.
const SHEBANG = readFileSync(join(REPO, 'bin/auditfwd'), 'utf8').split('\n')[0].split(' ');
const NODE_FLAGS = SHEBANG.slice(SHEBANG.indexOf('node') + 1);
// `-u NAME` takes NAME out of the environment (see the spawn below); NAME=VALUE sets it.
const NODE_UNSET = SHEBANG.flatMap((w, i) => (SHEBANG[i - 1] === '-u' ? [w] : []));
const NODE_ENV = Object.fromEntries(SHEBANG.slice(2, SHEBANG.indexOf('node')).filter((w) => w.includes('=')).map((w) => w.split('=')));
const child = spawn(
  'node',
  [...NODE_FLAGS, '--cpu-prof', '--cpu-prof-dir', dir, join(REPO, 'bin/auditfwd'), '--once', '--file', input.path, '--state-dir', join(dir, 'state'), '--log-level', 'warn', '--to', `127.0.0.1:${receiver.port}`, ...process.argv.slice(2)],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !NODE_UNSET.includes(k))), ...NODE_ENV } },
);
await done;
const seconds = (performance.now() - t0) / 1000;
await once(child, 'exit');
await receiver.close();

const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const prof = JSON.parse(readFileSync(join(dir, name), 'utf8'));
const keep = join(OUT, `raw-${MB}MB.cpuprofile`);
rmSync(keep, { force: true });
await import('node:fs').then((fs) => fs.renameSync(join(dir, name), keep));
rmSync(dir, { recursive: true, force: true });

// Self time per node: samples × their interval.
const dt = new Map();
for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const byFn = new Map();
for (const n of prof.nodes) {
  const us = dt.get(n.id) ?? 0;
  if (!us) continue;
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
  byFn.set(key, (byFn.get(key) ?? 0) + us);
}
const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + ' %';
process.stdout.write(`${input.lines} lines, ${(input.bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s; ${(total / 1e6).toFixed(2)} s sampled\n\n`);
for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write(`\nprofile: ${keep}\n`);
