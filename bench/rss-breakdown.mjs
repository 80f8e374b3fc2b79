#!/usr/bin/env node
// Where auditfwd's peak RSS goes, per bench row: runs bin/auditfwd --once on a file of real audit
// lines to the bench's receiver (tcp, k8s, tls, relp) with bench/lib/mem-probe.mjs loaded, and
// prints per run the kernel's peak (VmHWM) and, at the highest sampled RSS, file-backed vs
// anonymous pages and V8's heap, external and ArrayBuffer memory, in MB; then the medians.
//   node bench/rss-breakdown.mjs [--mb 100] [--runs 3] [--rows raw,k8s,tls,relp] [--bins before=DIR,after=DIR] [-- more auditfwd flags]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInput } from './lib/input.mjs';
import { median } from './lib/measure.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { tlsMaterial } from './lib/tls-material.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, '../bin/auditfwd');
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const extra = dash === -1 ? [] : argv.slice(dash + 1);
const flag = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i !== -1 && (dash === -1 || i < dash) ? argv[i + 1] : def;
};
const mb = Number(flag('mb', 100));
const runs = Number(flag('runs', 3));
const rows = flag('rows', 'raw,k8s,tls,relp').split(',');
// --bins name=DIR,name=DIR: builds to compare (e.g. main's checkout and this one), alternated run by run.
const bins = flag('bins', `this=${BIN}`)
  .split(',')
  .map((b) => b.split('='))
  .map(([name, path]) => ({ name, bin: path.endsWith('/bin/auditfwd') ? path : join(path, 'bin/auditfwd') }));
const scratch = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), 'auditfwd-rss-'));

const ROWS = {
  raw: { transport: 'tcp', to: (p) => ['--to', `127.0.0.1:${p}`] },
  k8s: { transport: 'tcp', to: (p) => ['--format', 'k8s-audit', '--to', `127.0.0.1:${p}`] },
  tls: { transport: 'tls', to: (p, ca) => ['--to', `tls://localhost:${p}`, '--ca', ca] },
  relp: { transport: 'relp', to: (p) => ['--to', `relp://127.0.0.1:${p}`] },
};

try {
  const input = buildInput(scratch, mb);
  const tls = tlsMaterial(scratch);
  const results = {};
  for (let run = 0; run < runs; run++) {
    for (const row of rows) for (const { name, bin } of bins) {
      const def = ROWS[row];
      const key = bins.length > 1 ? `${row} ${name}` : row;
      const receiver = await startReceiver({ transport: def.transport, count: 'frames', tls });
      const dir = mkdtempSync(join(scratch, 'run-'));
      const probe = join(dir, 'probe.json');
      const done = receiver.expect(input.lines);
      const t0 = performance.now();
      const args = ['--once', '--file', input.path, '--state-dir', join(dir, 'state'), '--log-level', 'warn', ...def.to(receiver.port, tls.caFile), ...extra];
      // NODE_FLAGS: run as `node FLAGS bin/auditfwd` (the #! line's flags are then not applied);
      // PROBE_EXTRA: more --import modules for the probe's NODE_OPTIONS.
      const cmd = process.env.NODE_FLAGS ? [process.execPath, ...process.env.NODE_FLAGS.split(' '), bin] : [bin];
      const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', join(dir, 'time'), ...cmd, ...args], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, NODE_OPTIONS: `--import ${join(HERE, 'lib/mem-probe.mjs')} ${process.env.PROBE_EXTRA ?? ''}`, AUDITFWD_MEM_PROBE: probe },
      });
      const [code] = await once(child, 'exit');
      await done;
      const seconds = (performance.now() - t0) / 1000;
      await receiver.close();
      const [u, s, m] = readFileSync(join(dir, 'time'), 'utf8').trim().split('\n').pop().split(/\s+/).map(Number);
      const p = JSON.parse(readFileSync(probe, 'utf8'));
      rmSync(dir, { recursive: true, force: true });
      const r = { code, seconds, cpuPerGB: ((u + s) * 1e9) / input.bytes, maxrss: m / 1024, ...p };
      (results[key] ??= []).push(r);
      const f = (x) => (typeof x === 'number' ? x.toFixed(1) : x);
      console.log(`${key} run ${run + 1}: ${Object.entries(r).map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
    }
  }
  console.log('\nmedians (MB; CPU s per GB); highest: the highest peak RSS of the runs:');
  const keys = ['maxrss', 'hwm', 'rss', 'file', 'anon', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers', 'cpuPerGB', 'seconds'];
  console.log(['row', 'highest', ...keys].join('\t'));
  for (const [row, rs] of Object.entries(results)) console.log([row, Math.max(...rs.map((r) => r.maxrss)).toFixed(1), ...keys.map((k) => median(rs.map((r) => r[k])).toFixed(1))].join('\t'));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
