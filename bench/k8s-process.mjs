#!/usr/bin/env node
// Whole-process cost of --format raw, k8s-audit and auto on the same file of real audit events:
// bin/auditfwd --once --file F --to - > /dev/null; CPU seconds (user + system) per GB and wall time,
// medians of N runs with the formats alternated, so that a shared machine's load weighs on each alike.
// Usage: npm run build && node bench/k8s-process.mjs [lines=200000] [runs=5] [another checkout, built, to compare]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measured } from './lib/measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const total = Number(process.argv[2] ?? 200_000);
const runs = Number(process.argv[3] ?? 5);
const other = process.argv[4];
const fixtures = join(root, 'test/fixtures/k8s-audit');
const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) =>
  readFileSync(join(fixtures, f), 'utf8').split('\n').filter(Boolean),
);
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-bench-'));
try {
  const file = join(dir, 'kube-apiserver', 'audit.log');
  mkdirSync(join(dir, 'kube-apiserver'));
  // Unique auditIDs, as in a real log (the sample's 88 events repeat).
  const text = Array.from({ length: total }, (_, i) => sample[i % sample.length].replace(/"auditID":"[^"]{8}/, `"auditID":"${i.toString(16).padStart(8, '0')}`)).join('\n') + '\n';
  writeFileSync(file, text);
  const gb = Buffer.byteLength(text) / 1e9;
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  let n = 0;
  const run = async (checkout, format) => {
    const state = join(dir, `state-${n++}`);
    const t0 = process.hrtime.bigint();
    const m = measured(join(checkout, 'bin/auditfwd'), ['--once', '--file', file, '--state-dir', state, '--to', '-', '--format', format, '--log-level', 'warn'], {
      env, timeFile: join(dir, 'time.txt'),
    });
    const r = await m.exited;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.code !== 0) throw new Error(`${format}: exit ${r.code}: ${r.stderr}`);
    rmSync(state, { recursive: true, force: true });
    return { cpuPerGB: r.cpu / gb, wall: s };
  };
  const contenders = [['raw', root, 'raw'], ['k8s-audit', root, 'k8s-audit'], ['auto', root, 'auto']];
  if (other) contenders.push([`raw (${other})`, other, 'raw'], [`k8s-audit (${other})`, other, 'k8s-audit']);
  const results = Object.fromEntries(contenders.map(([name]) => [name, []]));
  for (let r = 0; r < runs; r++) for (const [name, checkout, format] of contenders) results[name].push(await run(checkout, format));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const cpu = (name) => median(results[name].map((x) => x.cpuPerGB));
  console.log(`${total} lines (real audit events, ${(gb * 1000).toFixed(0)} MB), whole process including start-up, to /dev/null, medians of ${runs}`);
  for (const [name] of contenders) {
    const base = name.includes('(') ? `raw (${other})` : 'raw';
    const wall = median(results[name].map((x) => x.wall));
    console.log(`${name.padEnd(24)} ${cpu(name).toFixed(2).padStart(6)} CPU s/GB  ${(cpu(name) / cpu(base)).toFixed(2)}x raw  ${Math.round(total / wall).toLocaleString('en').padStart(9)} lines/s wall   CPU runs: ${results[name].map((x) => x.cpuPerGB.toFixed(2)).join(' ')}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
