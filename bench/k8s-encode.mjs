#!/usr/bin/env node
// Encode cost of --format raw, k8s-audit and auto on the real audit events (lines/s, median of 3).
// Usage: npm run build && node bench/k8s-encode.mjs [lines=200000] [dist folder to compare raw against, e.g. main's]
// Lines go through the encoders in batches of 256, as the file tailer hands them over; framing only,
// no I/O, so the numbers are the CPU cost of the formats themselves.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const total = Number(process.argv[2] ?? 200_000);
const otherDist = process.argv[3];

const fixtures = join(root, 'test/fixtures/k8s-audit');
const files = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'];
const sample = files.flatMap((f) => readFileSync(join(fixtures, f), 'utf8').split('\n').filter(Boolean));
const lines = Array.from({ length: total }, (_, i) => Buffer.from(sample[i % sample.length]));
const bytes = lines.reduce((n, l) => n + l.length, 0);

async function load(dist) {
  const imp = (p) => import(join(dist, p));
  return {
    ...(await imp('framing/rfc5424.js')),
    ...(await imp('framing/frame-writer.js')),
    // Older builds kept Stats under ops/.
    ...(await imp(existsSync(join(dist, 'telemetry/stats.js')) ? 'telemetry/stats.js' : 'ops/stats.js')),
    ...(await imp('transforms/encoder.js')),
    ...(existsSync(join(dist, 'transforms/k8s-audit.js')) ? await imp('transforms/k8s-audit.js') : {}),
  };
}

function makeEncoder(m, format) {
  const framer = new m.Rfc5424Framer({ facility: 1, severity: 6, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes: 256 * 1024 });
  const stats = new m.Stats();
  if (format === 'raw') return new m.RawEncoder(framer, stats);
  return new m.K8sAuditEncoder(framer, stats, { format, sdId: m.DEFAULT_SD_ID });
}

function once(m, format) {
  const enc = makeEncoder(m, format);
  const out = new m.FrameWriter();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < lines.length; i += 256) {
    enc.beginBatch();
    const end = Math.min(lines.length, i + 256);
    for (let j = i; j < end; j++) enc.encode(out, lines[j], lines[j].length);
    const batch = out.takeBatch(); // as the pipeline hands batches on
    sink += batch.frames.length;
    batch.release();
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sink === 0) throw new Error('nothing encoded');
  return lines.length / s;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mine = await load(join(root, 'dist'));
const runs = [['raw', mine, 'raw'], ['k8s-audit', mine, 'k8s-audit'], ['auto', mine, 'auto']];
if (otherDist) runs.push([`raw (${otherDist})`, await load(otherDist), 'raw']);
for (const [, m, f] of runs) once(m, f); // warm-up: JIT
const results = {};
for (let r = 0; r < 3; r++) for (const [name, m, f] of runs) (results[name] ??= []).push(once(m, f));
console.log(`${total} lines, ${(bytes / total).toFixed(0)} bytes/line average, ${sample.length} distinct real events`);
const raw = median(results.raw);
for (const [name] of runs) {
  const med = median(results[name]);
  console.log(`${name.padEnd(12)} ${Math.round(med).toLocaleString('en').padStart(10)} lines/s  ${((med * bytes) / total / 2 ** 20).toFixed(1).padStart(6)} MiB/s  ${(med / raw).toFixed(2)}x raw   runs: ${results[name].map((x) => Math.round(x)).join(', ')}`);
}
