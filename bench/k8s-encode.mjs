#!/usr/bin/env node
// Encode cost of --format raw, k8s-audit and auto on the real audit events: lines per CPU second
// (this thread's user + system time, so that other jobs on a shared machine weigh less than on wall
// time), median and best of N runs, the contenders alternated within each run.
// Usage: npm run build && node bench/k8s-encode.mjs [lines=200000] [another build's dist folder to compare, e.g. main's] [runs=9]
// Lines go through the encoders in batches of 256, as subarrays of one buffer, as the file tailer
// hands them over; framing only, no I/O, so the numbers are the CPU cost of the formats themselves.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repeatedAuditLines } from './lib/input.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const total = Number(process.argv[2] ?? 200_000);
const otherDist = process.argv[3];
const runCount = Number(process.argv[4] ?? 9);

const { sample, lines } = repeatedAuditLines(total);
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
  const t0 = process.cpuUsage();
  for (let i = 0; i < lines.length; i += 256) {
    enc.beginBatch();
    const end = Math.min(lines.length, i + 256);
    for (let j = i; j < end; j++) enc.encode(out, lines[j], lines[j].length);
    const batch = out.takeBatch(); // as the pipeline hands batches on
    sink += batch.frames.length;
    batch.release();
  }
  const used = process.cpuUsage(t0);
  const s = (used.user + used.system) / 1e6;
  if (sink === 0) throw new Error('nothing encoded');
  return lines.length / s;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mine = await load(join(root, 'dist'));
const runs = [['raw', mine, 'raw'], ['k8s-audit', mine, 'k8s-audit'], ['auto', mine, 'auto']];
if (otherDist) {
  const other = await load(otherDist);
  runs.push(['raw (other)', other, 'raw'], ['k8s (other)', other, 'k8s-audit']);
}
for (const [, m, f] of runs) once(m, f); // warm-up: JIT
const results = {};
for (let r = 0; r < runCount; r++) for (const [name, m, f] of runs) (results[name] ??= []).push(once(m, f));
console.log(`${total} lines, ${(bytes / total).toFixed(0)} bytes/line average, ${sample.length} distinct real events; lines per CPU second, median (best) of ${runCount}${otherDist ? `; other: ${otherDist}` : ''}`);
const best = (xs) => Math.max(...xs);
for (const [name] of runs) {
  const med = median(results[name]);
  const raw = median(results[name.includes('other') ? 'raw (other)' : 'raw']);
  const nsExtra = (1 / med - 1 / raw) * 1e9;
  console.log(`${name.padEnd(12)} ${Math.round(med).toLocaleString('en').padStart(10)} (${Math.round(best(results[name])).toLocaleString('en')}) lines/s  ${(1e9 / med).toFixed(0).padStart(5)} ns/line  ${(raw / med).toFixed(2)}x raw's CPU  ${nsExtra > 0 ? `+${nsExtra.toFixed(0)} ns/line over raw` : ''}`);
}
