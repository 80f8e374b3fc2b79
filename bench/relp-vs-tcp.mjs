#!/usr/bin/env node
// RELP throughput relative to plain TCP, same file, same machine.
//
//   npm run build && node bench/relp-vs-tcp.mjs [--lines 200000] [--runs 3] [--windows 1024]
//                                                          [--receivers node,rsyslog] [--cpu-prof DIR]
//
// auditfwd --once reads a file of real Kubernetes audit events (made unique with a "seq" field) and
// sends it to:
//   node:    a receiver in this process that counts octet-counted frames (TCP) or answers every RELP
//            `syslog` with `rsp 200` (RELP): what the transport costs, with a drain that is never slow;
//   rsyslog: rsyslogd imtcp vs imrelp writing each message to a file in /dev/shm: a real drain.
// Time is from starting auditfwd to the drain having every message; median of --runs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'auditfwd');
const RSYSLOGD = '/usr/sbin/rsyslogd';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const N = Number(opt('lines', '200000'));
const RUNS = Number(opt('runs', '3'));
const WINDOWS = opt('windows', '1024').split(',').map(Number);
const RECEIVERS = opt('receivers', 'node,rsyslog').split(',');
/** --cpu-prof DIR: each auditfwd run writes a V8 CPU profile there. */
const PROF = opt('cpu-prof', undefined);

function numberedAuditLines(n) {
  const dir = join(ROOT, 'test/fixtures/k8s-audit');
  const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
  const out = new Array(n);
  for (let k = 0; k < n; k++) out[k] = `{"seq":${k},` + sample[k % sample.length].slice(1);
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'auditfwd-bench-relp-'));
const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/auditfwd-bench-relp-') : work;
const cleanup = [];
process.on('exit', () => {
  for (const c of cleanup) c();
  rmSync(work, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

const lines = numberedAuditLines(N);
const input = join(work, 'audit.log');
const text = lines.join('\n') + '\n';
writeFileSync(input, text);
const inputBytes = Buffer.byteLength(text);

let runNo = 0;
function auditfwd(to, extra) {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const node = PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF] : [];
  // /usr/bin/time reports auditfwd's CPU seconds (user + system) on stderr's last line.
  const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'CPU %U %S'] : [];
  const [cmd, ...pre] = [...timed, process.execPath];
  const child = spawn(cmd, [...pre, ...node, BIN, '--file', input, '--to', to, '--once', '--log-level', 'warn', '--state-dir', join(work, `state-${runNo++}`), ...extra], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`auditfwd exited ${code}: ${err}`);
    const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(err);
    return m ? Number(m[1]) + Number(m[2]) : NaN;
  });
  cleanup.push(() => child.exitCode === null && child.kill('SIGKILL'));
  return exited;
}

async function listen(onConn) {
  const server = createServer(onConn);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** Counts octet-counted frames until `n`. */
async function tcpCounter(n) {
  let count = 0;
  let done;
  const complete = new Promise((r) => (done = r));
  const server = await listen((sock) => {
    let need = -1; // bytes of the current frame's body still to skip; -1 while reading the length
    let len = 0;
    sock.on('data', (b) => {
      let i = 0;
      while (i < b.length) {
        if (need < 0) {
          const c = b[i++];
          if (c === 0x20) {
            need = len;
            len = 0;
          } else len = len * 10 + c - 0x30;
        } else {
          const take = Math.min(need, b.length - i);
          i += take;
          need -= take;
          if (need === 0) {
            need = -1;
            if (++count === n) done();
          }
        }
      }
    });
    sock.on('error', () => {});
  });
  return { port: server.address().port, complete, close: () => server.close() };
}

/** A RELP server that answers every syslog command with 200 at once, counting until `n`. */
async function relpCounter(n) {
  let count = 0;
  let done;
  const complete = new Promise((r) => (done = r));
  const server = await listen((sock) => {
    sock.setNoDelay(true); // answers at once; Nagle would hold them for the sender's delayed ACK
    let pending = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      const b = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let i = 0;
      const answers = [];
      for (;;) {
        const sp1 = b.indexOf(0x20, i);
        if (sp1 < 0) break;
        const sp2 = b.indexOf(0x20, sp1 + 1);
        const lf2 = b.indexOf(0x0a, sp1 + 1);
        if (sp2 < 0 && lf2 < 0) break;
        const cmdEnd = sp2 < 0 ? lf2 : lf2 < 0 ? sp2 : Math.min(sp2, lf2);
        const txnr = b.toString('latin1', i, sp1);
        const cmd = b.toString('latin1', sp1 + 1, cmdEnd);
        // DATALEN follows the command.
        let j = cmdEnd + 1;
        let len = 0;
        while (j < b.length && b[j] >= 0x30 && b[j] <= 0x39) len = len * 10 + b[j++] - 0x30;
        if (j >= b.length) break;
        const end = len > 0 ? j + 1 + len : j;
        if (end >= b.length) break;
        i = end + 1;
        if (cmd === 'syslog') {
          answers.push(`${txnr} rsp 6 200 OK\n`);
          if (++count === n) done();
        } else if (cmd === 'open') {
          const offers = '200 OK\nrelp_version=0\nrelp_software=bench\ncommands=syslog';
          answers.push(`${txnr} rsp ${offers.length} ${offers}\n`);
        } else if (cmd === 'close') answers.push(`${txnr} rsp 0\n`);
      }
      pending = Buffer.from(b.subarray(i));
      if (answers.length) sock.write(answers.join(''));
    });
    sock.on('error', () => {});
  });
  return { port: server.address().port, complete, close: () => server.close() };
}

async function freePort() {
  const s = await listen(() => {});
  const port = s.address().port;
  s.close();
  return port;
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** rsyslogd with imtcp or imrelp writing %msg%\n to a file in /dev/shm; complete when the file is. */
async function rsyslog(kind) {
  const dir = mkdtempSync(join(shm, `${kind}-`));
  mkdirSync(join(dir, 'work'));
  const port = await freePort();
  const out = join(dir, 'out.log');
  const input = kind === 'relp' ? `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")` : `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`;
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    [
      `global(workDirectory="${dir}/work" maxMessageSize="256k")`,
      `module(load="${kind === 'relp' ? 'imrelp' : 'imtcp'}")`,
      `template(name="out" type="string" string="%msg%\\n")`,
      `ruleset(name="out") {`,
      `  action(type="omfile" file="${out}" template="out")`,
      `}`,
      input,
      '',
    ].join('\n'),
  );
  const child = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'pid')], { stdio: 'ignore' });
  cleanup.push(() => child.exitCode === null && child.kill('SIGKILL'));
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`rsyslogd (${kind}) did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const size = () => (existsSync(out) ? statSync(out).size : 0);
  const complete = (async () => {
    // rsyslog's file is the only sign of progress: polled.
    while (size() < inputBytes) await new Promise((r) => setTimeout(r, 5));
  })();
  return {
    port,
    complete,
    /** rsyslogd's CPU seconds so far (user + system, from /proc). */
    cpu: () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'latin1').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    },
    close: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function one(receiver, transport, window) {
  const drain = receiver === 'node' ? await (transport === 'relp' ? relpCounter(N) : tcpCounter(N)) : await rsyslog(transport);
  const extra = transport === 'relp' ? ['--relp-window', String(window)] : [];
  const t0 = process.hrtime.bigint();
  const [fwdCpu] = await Promise.all([auditfwd(`${transport}://127.0.0.1:${drain.port}`, extra), drain.complete]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const drainCpu = drain.cpu?.() ?? NaN;
  await drain.close();
  return { s, fwdCpu, drainCpu };
}

/** The run with the median time, and its line. */
function summary(label, runs, tcpS) {
  const m = [...runs].sort((a, b) => a.s - b.s)[Math.floor(runs.length / 2)];
  const cpu = `CPU s: auditfwd ${m.fwdCpu.toFixed(2)}` + (Number.isNaN(m.drainCpu) ? '' : `, drain ${m.drainCpu.toFixed(2)}`);
  const ratio = tcpS === undefined ? '' : `  RELP/TCP = ${(tcpS / m.s).toFixed(2)}`;
  return { s: m.s, line: `${label} ${m.s.toFixed(2)} s  ${(mb / m.s).toFixed(0)} MB/s  ${Math.round(N / m.s)} lines/s  (${cpu})  [${runs.map((x) => x.s.toFixed(2)).join(' ')}]${ratio}` };
}
const mb = inputBytes / 1e6;
console.log(`${N} audit lines, ${mb.toFixed(1)} MB, ${RUNS} runs each, median; time = auditfwd start → drain has every message`);
for (const receiver of RECEIVERS) {
  if (receiver === 'rsyslog' && !existsSync(RSYSLOGD)) {
    console.log('rsyslog: skipped (no /usr/sbin/rsyslogd)');
    continue;
  }
  const tcp = [];
  const relp = new Map(WINDOWS.map((w) => [w, []]));
  // Interleaved, so a change of machine load hits both alike.
  for (let r = 0; r < RUNS; r++) {
    tcp.push(await one(receiver, 'tcp'));
    for (const w of WINDOWS) relp.get(w).push(await one(receiver, 'relp', w));
  }
  const t = summary(`${receiver.padEnd(8)} tcp             `, tcp);
  console.log(t.line);
  for (const w of WINDOWS) console.log(summary(`${receiver.padEnd(8)} relp window ${String(w).padEnd(5)}`, relp.get(w), t.s).line);
}
