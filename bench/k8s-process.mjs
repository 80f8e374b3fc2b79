#!/usr/bin/env node
// Whole-process throughput of --format raw, k8s-audit and auto on the same file of real audit events:
// bin/auditfwd --once --file F --to - > /dev/null, wall time, median of 3.
// Usage: npm run build && node bench/k8s-process.mjs [lines=200000]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const total = Number(process.argv[2] ?? 200_000);
const fixtures = join(root, 'test/fixtures/k8s-audit');
const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) =>
  readFileSync(join(fixtures, f), 'utf8').split('\n').filter(Boolean),
);
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-bench-'));
try {
  const file = join(dir, 'kube-apiserver', 'audit.log');
  mkdirSync(join(dir, 'kube-apiserver'));
  writeFileSync(file, Array.from({ length: total }, (_, i) => sample[i % sample.length]).join('\n') + '\n');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const run = (format, n) => {
    const state = join(dir, `state-${format}-${n}`);
    const t0 = process.hrtime.bigint();
    const r = spawnSync(join(root, 'bin/auditfwd'), ['--once', '--file', file, '--state-dir', state, '--to', '-', '--format', format, '--log-level', 'warn'], {
      env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024,
    });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`${format}: exit ${r.status}: ${r.stderr}`);
    return total / s;
  };
  const formats = ['raw', 'k8s-audit', 'auto'];
  const results = Object.fromEntries(formats.map((f) => [f, [] ]));
  for (let n = 0; n < 3; n++) for (const f of formats) results[f].push(run(f, n));
  const median = (xs) => [...xs].sort((a, b) => a - b)[1];
  const raw = median(results.raw);
  console.log(`${total} lines (real audit events), whole process including start-up, to /dev/null`);
  for (const f of formats) {
    const m = median(results[f]);
    console.log(`${f.padEnd(10)} ${Math.round(m).toLocaleString('en').padStart(9)} lines/s  ${(m / raw).toFixed(2)}x raw   runs: ${results[f].map(Math.round).join(', ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
