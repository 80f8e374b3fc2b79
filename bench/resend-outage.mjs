#!/usr/bin/env node
// What an outage costs in memory with --tcp-resend-window: auditfwd raw sends N MB of audit lines
// with --once to a drain on 127.0.0.1 that resets its connection after every 100 MB it reads, K
// times, then reads the rest; after each reset the window (auto: this host's tcp_wmem + tcp_rmem
// maxima) is sent again first. Prints peak RSS and CPU s per run for each build, builds alternated.
//   node bench/resend-outage.mjs [MB=500] [runs=3] [resets=3] [name=DIR,name=DIR …]
// DIR is a checkout with its build (default: this one). The input and state live in a temporary
// folder removed at the end.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInput } from './lib/input.mjs';
import { measured, median } from './lib/measure.mjs';

const MB = Number(process.argv[2] ?? 500);
const RUNS = Number(process.argv[3] ?? 3);
const RESETS = Number(process.argv[4] ?? 3);
const BINS = (process.argv[5] ?? `this=${fileURLToPath(new URL('..', import.meta.url))}`).split(',').map((b) => {
  const [name, dir] = b.split('=');
  return { name, bin: join(dir, 'bin/auditfwd') };
});
const LIFE = 100e6;
const scratch = mkdtempSync(join(tmpdir(), 'auditfwd-outage-bench-'));

/** A drain whose first `resets` connections are reset once they have read LIFE bytes. */
async function resettingDrain(resets) {
  let connections = 0;
  let bytes = 0;
  const server = createServer((sock) => {
    const n = ++connections;
    let read = 0;
    sock.on('data', (d) => {
      read += d.length;
      bytes += d.length;
      if (n <= resets && read > LIFE) sock.resetAndDestroy();
    });
    sock.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: server.address().port, stats: () => ({ connections, bytes }), close: () => server.close() };
}

try {
  const input = buildInput(scratch, MB);
  const results = new Map(BINS.map((b) => [b.name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const { name, bin } of run % 2 ? [...BINS].reverse() : BINS) {
      const dir = join(scratch, `run-${run}-${name}`);
      mkdirSync(dir);
      const drain = await resettingDrain(RESETS);
      const args = ['--once', '--file', input.path, '--state-dir', join(dir, 'state'), '--log-level', 'warn', '--reconnect-max-delay', '100ms', '--to', `127.0.0.1:${drain.port}`];
      const r = await measured(bin, args, { timeFile: join(dir, 'time.txt') }).exited;
      drain.close();
      const { connections, bytes } = drain.stats();
      if (r.code !== 0) throw new Error(`${name}: exit ${r.code ?? r.signal}: ${r.stderr.slice(-500)}`);
      if (connections !== RESETS + 1 || bytes < input.bytes) throw new Error(`${name}: ${connections} connections, ${bytes} bytes received of ${input.bytes}`);
      results.get(name).push({ cpu: r.cpu, rssMB: r.rssMB, resent: bytes - input.bytes });
      console.log(`${name} run ${run + 1}: peak RSS ${r.rssMB.toFixed(1)} MB, CPU ${r.cpu.toFixed(2)} s, ${((bytes - input.bytes) / 1e6).toFixed(0)} MB more than the input received (headers and resends)`);
    }
  }
  console.log(`\n${MB} MB of audit lines, a drain that resets after each 100 MB ${RESETS} times; ${RUNS} runs per build, alternated`);
  console.log('| build | peak RSS MB, median (highest) | CPU s, median |');
  console.log('|---|---:|---:|');
  for (const [name, rs] of results) {
    console.log(`| ${name} | ${median(rs.map((r) => r.rssMB)).toFixed(1)} (${Math.max(...rs.map((r) => r.rssMB)).toFixed(1)}) | ${median(rs.map((r) => r.cpu)).toFixed(2)} |`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
