#!/usr/bin/env node
// What --tcp-resend-window costs: auditfwd raw sends N MB of audit lines with --once to a receiver
// on 127.0.0.1 (as `npm run bench`'s raw row), once per window size, the sizes alternated over the
// runs; prints CPU s per GB, MB/s and peak RSS (medians; RSS the highest) per size.
//   node bench/resend-window.mjs [MB=200] [runs=3] [sizes=0,4MiB,auto]
// Needs `npm run build` first. The input and state live in a temporary folder removed at the end.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInput } from './lib/input.mjs';
import { measured, median } from './lib/measure.mjs';
import { startReceiver } from './lib/receiver.mjs';

const MB = Number(process.argv[2] ?? 200);
const RUNS = Number(process.argv[3] ?? 3);
const SIZES = (process.argv[4] ?? '0,4MiB,auto').split(',');
const BIN = fileURLToPath(new URL('../bin/auditfwd', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'auditfwd-resend-bench-'));

try {
  const input = buildInput(scratch, MB);
  const results = new Map(SIZES.map((s) => [s, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const size of run % 2 ? [...SIZES].reverse() : SIZES) {
      const dir = join(scratch, `run-${run}-${size}`);
      mkdirSync(dir);
      const receiver = await startReceiver({ transport: 'tcp', count: 'frames' });
      const done = receiver.expect(input.lines);
      const args = ['--once', '--file', input.path, '--state-dir', join(dir, 'state'), '--log-level', 'warn', '--to', `127.0.0.1:${receiver.port}`, '--tcp-resend-window', size];
      const r = await measured(BIN, args, { timeFile: join(dir, 'time.txt') }).exited;
      if (r.code !== 0) throw new Error(`--tcp-resend-window ${size}: exit ${r.code ?? r.signal}: ${r.stderr.slice(-500)}`);
      const lastAt = await done;
      const streaming = (lastAt - receiver.firstAt) / 1000;
      results.get(size).push({ cpu: r.cpu, rssMB: r.rssMB, mbps: input.bytes / 1e6 / streaming });
      await receiver.close();
    }
  }
  console.log(`${MB} MB of audit lines (${input.lines} lines), ${RUNS} runs per size, --once to 127.0.0.1`);
  console.log('| --tcp-resend-window | CPU s per GB | MB/s once running | peak RSS MB (highest) |');
  console.log('| --- | --- | --- | --- |');
  for (const [size, rs] of results) {
    const cpuPerGb = median(rs.map((x) => x.cpu / (input.bytes / 1e9)));
    console.log(`| ${size} | ${cpuPerGb.toFixed(2)} | ${median(rs.map((x) => x.mbps)).toFixed(0)} | ${Math.max(...rs.map((x) => x.rssMB)).toFixed(1)} (each: ${rs.map((x) => x.rssMB.toFixed(0)).join(', ')}) |`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
