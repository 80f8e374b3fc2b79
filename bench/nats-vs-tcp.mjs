#!/usr/bin/env node
// NATS JetStream next to TCP and RELP: throughput and auditfwd's CPU per GB, same file, same machine.
//
//   npm run build && node bench/nats-vs-tcp.mjs [--lines 100000] [--runs 3] [--windows 256,1024]
//                                                          [--replicas 1,3]
//
// auditfwd --once reads a file of real Kubernetes audit events (made unique with a "seq" field) and
// sends it to: the bench's own TCP and RELP receivers (bench/lib/receiver.mjs: count frames, RELP
// answers each at once); and nats-server 2.9 (Debian nats-server) with JetStream, file storage, one
// stream capturing the subject: a single node (R1) and a 3-node cluster on 127.0.0.1 (R3). Time is
// from starting auditfwd to its exit (--once exits once everything is acknowledged); median of --runs.
// CPU is auditfwd's (user + system), not the servers'.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startReceiver } from './lib/receiver.mjs';
import { measured, median } from './lib/measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'auditfwd');
const NATS_SERVER = '/usr/sbin/nats-server';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const N = Number(opt('lines', '100000'));
const RUNS = Number(opt('runs', '3'));
const WINDOWS = opt('windows', '256,1024').split(',').map(Number);
const REPLICAS = opt('replicas', '1,3').split(',').map(Number);

const work = mkdtempSync(join(tmpdir(), 'auditfwd-bench-nats-'));
const cleanup = [];
process.on('exit', () => {
  for (const c of cleanup) c();
  rmSync(work, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) => readFileSync(join(ROOT, 'test/fixtures/k8s-audit', f), 'utf8').split('\n').filter(Boolean));
const text = Array.from({ length: N }, (_, k) => `{"seq":${k},` + sample[k % sample.length].slice(1)).join('\n') + '\n';
const input = join(work, 'app', 'audit.log');
mkdirSync(dirname(input));
writeFileSync(input, text);
const inputBytes = Buffer.byteLength(text);

let runNo = 0;
async function auditfwd(to, extra) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const run = measured(process.execPath, [BIN, '--file', input, '--to', to, '--once', '--log-level', 'warn', '--exit-timeout', '10m', '--state-dir', join(work, `state-${runNo}`), ...extra], { env, timeFile: join(work, `time-${runNo++}`) });
  cleanup.push(() => run.child.exitCode === null && run.child.kill('SIGKILL'));
  const t0 = process.hrtime.bigint();
  const r = await run.exited;
  if (r.code !== 0) throw new Error(`auditfwd exited ${r.code}: ${r.stderr}`);
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: r.cpu };
}

const freePort = async () => {
  const r = await startReceiver();
  const { port } = r;
  await r.close();
  return port;
};
const accepts = (port) => new Promise((resolve) => {
  const s = netConnect({ host: '127.0.0.1', port });
  s.once('connect', () => (s.destroy(), resolve(true)));
  s.once('error', () => resolve(false));
});

/** nats-server nodes with JetStream on 127.0.0.1 and a stream of `replicas` capturing auditfwd.>. */
async function natsCluster(size) {
  const dir = mkdtempSync(join(work, 'nats-'));
  const ports = await Promise.all(Array.from({ length: size * 2 }, freePort));
  const procs = [];
  for (let i = 0; i < size; i++) {
    const conf = join(dir, `n${i}.conf`);
    const routes = ports.slice(size).filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    writeFileSync(conf, [`server_name: n${i}`, `listen: 127.0.0.1:${ports[i]}`, `jetstream { store_dir: "${join(dir, `s${i}`)}" }`, ...(size > 1 ? [`cluster { name: bench, listen: 127.0.0.1:${ports[size + i]}, routes: [${routes.join(', ')}] }`] : [])].join('\n'));
    const p = spawn(NATS_SERVER, ['-c', conf], { stdio: 'ignore' });
    cleanup.push(() => p.exitCode === null && p.kill('SIGKILL'));
    procs.push(p);
  }
  for (const port of ports.slice(0, size)) while (!(await accepts(port))) await new Promise((r) => setTimeout(r, 50));
  const servers = ports.slice(0, size).map((p) => `127.0.0.1:${p}`);
  const nc = await connect({ servers });
  for (let tries = 0; ; tries++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      await jsm.streams.add({ name: 'AUDIT', subjects: ['auditfwd.>'], num_replicas: size, storage: 'file' });
      break;
    } catch (err) {
      if (tries > 80) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await nc.close();
  return {
    to: `nats://${servers.join(',')}`,
    close: async () => {
      for (const p of procs) p.kill('SIGKILL');
      await Promise.all(procs.map((p) => (p.exitCode === null ? once(p, 'exit') : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function syslog(transport) {
  const r = await startReceiver({ transport });
  const done = r.expect(N);
  const m = await auditfwd(`${transport}://127.0.0.1:${r.port}`, []);
  await done;
  await r.close();
  return m;
}

async function nats(replicas, window) {
  // A fresh cluster per run: every run writes the same lines into an empty stream.
  const c = await natsCluster(replicas);
  try {
    return await auditfwd(c.to, ['--nats-window', String(window)]);
  } finally {
    await c.close();
  }
}

const mb = inputBytes / 1e6;
const line = (label, runs, tcpS) => {
  const s = median(runs.map((r) => r.s));
  const cpu = median(runs.map((r) => r.cpu));
  const ratio = tcpS === undefined ? '' : `  (${(tcpS / s).toFixed(2)} of TCP)`;
  return `${label.padEnd(26)} ${s.toFixed(2)} s  ${(mb / s).toFixed(0).padStart(4)} MB/s  ${String(Math.round(N / s)).padStart(6)} lines/s  auditfwd ${(cpu / (inputBytes / 1e9)).toFixed(1)} CPU s/GB  [${runs.map((r) => r.s.toFixed(2)).join(' ')}]${ratio}`;
};
console.log(`${N} audit lines, ${mb.toFixed(1)} MB, ${RUNS} runs each, median; time = auditfwd --once start → exit`);
const rows = { tcp: [], relp: [] };
const natsRows = new Map();
for (let r = 0; r < RUNS; r++) {
  // Interleaved, so a change of machine load hits all alike.
  rows.tcp.push(await syslog('tcp'));
  rows.relp.push(await syslog('relp'));
  if (!existsSync(NATS_SERVER)) continue;
  for (const rep of REPLICAS) {
    for (const w of WINDOWS) {
      const key = `nats R${rep} window ${w}`;
      if (!natsRows.has(key)) natsRows.set(key, []);
      natsRows.get(key).push(await nats(rep, w));
    }
  }
}
const tcpS = median(rows.tcp.map((r) => r.s));
console.log(line('tcp', rows.tcp));
console.log(line('relp window 1024', rows.relp, tcpS));
if (!existsSync(NATS_SERVER)) console.log('nats: skipped (no /usr/sbin/nats-server: Debian package nats-server)');
for (const [k, runs] of natsRows) console.log(line(k, runs, tcpS));
