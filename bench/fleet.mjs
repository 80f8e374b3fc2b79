#!/usr/bin/env node
// A fleet simulation: N auditfwd agents, each following its own growing file, sending over RELP to a
// pool of 3 real rsyslog relays; one relay is killed -9 a third of the way in and restarted at two
// thirds. Prints, per N: agent CPU (% of one core) and peak RSS, relay CPU, end-to-end latency
// (line written → relay received it), lost (must be 0) and duplicates.
//
//   npm run build && node bench/fleet.mjs [--agents 1,10,30] [--rate 500] [--seconds 30]
//
// Each agent lists the relays in its own order (agent i starts at relay i mod 3), with the default
// --pool failover: the fleet spreads over the relays, and an agent whose relay dies fails over.
// Relays: imrelp, a Direct main queue, omfile to /dev/shm (what rsyslog acknowledged is in the file),
// writing rsyslog's reception time (timegenerated, µs) before each message for the latency.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'auditfwd');
const RSYSLOGD = '/usr/sbin/rsyslogd';
const TICK_HZ = 100; // /proc/PID/stat clock ticks per second (USER_HZ)

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const AGENTS = opt('agents', '1,10,30').split(',').map(Number);
const RATE = Number(opt('rate', '500'));
const SECONDS = Number(opt('seconds', '30'));
const RELAYS = 3;

if (!existsSync(RSYSLOGD) || !existsSync('/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so')) {
  console.error('fleet bench: needs rsyslogd with imrelp (Debian packages rsyslog, rsyslog-relp)');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'auditfwd-bench-fleet-'));
const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/auditfwd-bench-fleet-') : work;
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) =>
  readFileSync(join(ROOT, 'test/fixtures/k8s-audit', f), 'utf8').split('\n').filter(Boolean),
);

async function freePort() {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

const accepts = (port) =>
  new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime
  } catch {
    return 0;
  }
}

function peakRss(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return 0;
  }
}

class Relay {
  constructor(dir, port) {
    this.dir = dir;
    this.port = port;
    this.out = join(shm, `${dir.split('/').slice(-2).join('-')}.log`);
    this.cpu = 0; // ticks of earlier (killed) processes
    this.conf = join(dir, 'rsyslog.conf');
    mkdirSync(join(dir, 'work'), { recursive: true });
    writeFileSync(
      this.conf,
      [
        `global(workDirectory="${dir}/work" maxMessageSize="256k")`,
        'main_queue(queue.type="Direct")',
        'module(load="imrelp")',
        'template(name="out" type="string" string="%timegenerated:::date-rfc3339% %msg%\\n")',
        'ruleset(name="out") {',
        `  action(type="omfile" file="${this.out}" template="out" asyncWriting="off" flushOnTXEnd="on" ioBufferSize="256k")`,
        '}',
        `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")`,
        '',
      ].join('\n'),
    );
  }
  async start() {
    this.child = spawn(RSYSLOGD, ['-n', '-f', this.conf, '-i', join(this.dir, 'pid')], { stdio: 'ignore' });
    children.add(this.child);
    this.exited = once(this.child, 'exit');
    while (!(await accepts(this.port))) await new Promise((r) => setTimeout(r, 20));
  }
  async kill9() {
    this.cpu += cpuTicks(this.child.pid);
    this.child.kill('SIGKILL');
    await this.exited;
  }
  async stop() {
    this.cpu += cpuTicks(this.child.pid);
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

async function runFleet(n) {
  const base = join(work, `n${n}`);
  const relays = [];
  for (let r = 0; r < RELAYS; r++) relays.push(new Relay(join(base, `relay${r}`), await freePort()));
  for (const r of relays) await r.start();
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const agents = [];
  for (let a = 0; a < n; a++) {
    const file = join(base, `agent${a}`, 'audit.log');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    const order = relays.map((_, k) => relays[(a + k) % RELAYS]);
    const to = order.flatMap((r) => ['--to', `relp://127.0.0.1:${r.port}`]);
    const child = spawn(BIN, ['--file', file, ...to, '--state-dir', join(base, `agent${a}`, 'state'), '--log-level', 'warn', '--reconnect-max-delay', '1s'], { stdio: ['ignore', 'ignore', 'pipe'], env });
    children.add(child);
    child.stderr.resume();
    agents.push({ file, child, seq: 0 });
  }
  // Writers: every 100 ms each agent's file gets the lines due at RATE since the start (a late tick
  // catches up), each carrying agent, seq and write time.
  const started = Date.now();
  let written = 0;
  const tick = setInterval(() => {
    const now = Date.now();
    const due = Math.floor(((now - started) / 1000) * RATE);
    for (const [a, ag] of agents.entries()) {
      let chunk = '';
      for (; ag.seq < due; ag.seq++, written++) chunk += `{"a":${a},"seq":${ag.seq},"t":${now},` + sample[(ag.seq + a) % sample.length].slice(1) + '\n';
      if (chunk) appendFileSync(ag.file, chunk);
    }
  }, 100);
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
  const victim = relays[0];
  await victim.kill9();
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
  await victim.start();
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
  clearInterval(tick);
  const wroteFor = (Date.now() - started) / 1000;
  // Everything written should arrive; give the fleet up to 60 s to catch up.
  const count = () => relays.reduce((s, r) => s + (existsSync(r.out) ? readFileSync(r.out).toString().split('\n').length - 1 : 0), 0);
  const deadline = Date.now() + 60_000;
  while (count() < written && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
  const ranFor = (Date.now() - started) / 1000;
  const agentCpu = agents.map((ag) => cpuTicks(ag.child.pid) / TICK_HZ);
  const agentRss = agents.map((ag) => peakRss(ag.child.pid));
  for (const ag of agents) ag.child.kill('SIGTERM');
  await Promise.all(agents.map((ag) => (ag.child.exitCode === null ? once(ag.child, 'exit') : undefined)));
  for (const r of relays) await r.stop();

  // Every relay line: "<timegenerated> {"a":A,"seq":S,"t":T,...}"; a kill -9 may leave a torn start,
  // to which the restarted relay appends: the last record on such a line is the whole one.
  const seen = agents.map((ag) => new Uint8Array(ag.seq));
  const latencies = [];
  let lines = 0;
  let dups = 0;
  const re = /(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) \{"a":(\d+),"seq":(\d+),"t":(\d+),/g;
  for (const r of relays) {
    if (!existsSync(r.out)) continue;
    for (const line of readFileSync(r.out, 'utf8').split('\n')) {
      let last;
      for (const m of line.matchAll(re)) last = m;
      if (!last) continue;
      const [, ts, a, s, t] = last;
      lines++;
      const got = seen[Number(a)];
      if (got[Number(s)]) dups++;
      else latencies.push(Date.parse(ts) + Number((/\.(\d{3})(\d*)/.exec(ts)?.[2] ?? '').padEnd(3, '0').slice(0, 3)) / 1000 - Number(t));
      got[Number(s)] = 1;
    }
  }
  const lost = seen.reduce((sum, got) => sum + got.reduce((x, v) => x + (v ? 0 : 1), 0), 0);
  latencies.sort((x, y) => x - y);
  const relayCpu = relays.map((r) => r.cpu / TICK_HZ);
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    n,
    written,
    lost,
    dups,
    rate: written / n / wroteFor,
    agentCpuMsPer1k: (1000 * mean(agentCpu)) / (written / n / 1000),
    agentCpuPct: (100 * mean(agentCpu)) / ranFor,
    agentCpuMaxPct: (100 * Math.max(...agentCpu)) / ranFor,
    agentRssMb: mean(agentRss) / 2 ** 20,
    agentRssMaxMb: Math.max(...agentRss) / 2 ** 20,
    relayCpuPct: relayCpu.map((c) => (100 * c) / ranFor),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    wroteFor,
  };
}

console.error(`fleet: agents ${AGENTS.join(', ')}; ${RATE} events/s each for ${SECONDS} s; ${RELAYS} rsyslog RELP relays, relay 0 killed -9 at ${SECONDS / 3} s and restarted at ${(2 * SECONDS) / 3} s`);
const rows = [];
for (const n of AGENTS) {
  const r = await runFleet(n);
  rows.push(r);
  console.error(`  N=${n}: ${JSON.stringify(r)}`);
}
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
console.log('| agents | events (per agent /s) | agent CPU ms per 1000 events | agent CPU % (mean / max) | agent peak RSS MB (mean / max) | relay CPU % (each) | latency p50 / p99 ms | lost | duplicates |');
console.log('|---:|---:|---:|---:|---:|---|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.n} | ${r.written} (${f(r.rate, 0)}) | ${f(r.agentCpuMsPer1k)} | ${f(r.agentCpuPct)} / ${f(r.agentCpuMaxPct)} | ${f(r.agentRssMb)} / ${f(r.agentRssMaxMb)} | ${r.relayCpuPct.map((c) => f(c)).join(' / ')} | ${f(r.p50, 0)} / ${f(r.p99, 0)} | ${r.lost} | ${r.dups} |`);
}
console.log(`\nload average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
