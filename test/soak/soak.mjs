#!/usr/bin/env node
// Soak test of the real binary (bin/auditfwd, built dist/): a lumberjack-like writer (writes without
// O_APPEND at its own position, renames to audit-<time>.log at a size), a stemcell-like logrotate
// (copytruncate of audit.log, the previous copy gzipped), random kill -9 and SIGTERM of auditfwd,
// drain outages and slow drains; against the test receiver (TCP) and a real rsyslog (RELP), in turn,
// the lines read raw in two runs of every four and as Kubernetes audit events in the other two.
// Checks per run: every line delivered at least once, first deliveries in order, no NUL or empty
// message, duplicates within the documented bound. Prints the figures; exits 1 otherwise.
//
// usage: node test/soak/soak.mjs [--seconds 120] [--runs 4] [--compress] [--seed N]
//   --compress: lumberjack's --audit-log-compress and logrotate's compress (backups gzipped, then
//               deleted): lines of a backup gzipped before auditfwd read them are read from the .gz.
// A failing run keeps its folder, with auditfwd's whole log (auditfwd.log) and the lost ranges printed.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { autoWindowBytes } from '../../dist/sinks/resend-window.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const SECONDS = Number(opt('seconds', 120));
const RUNS = Number(opt('runs', 4));
const COMPRESS = args.includes('--compress');
let seed = Number(opt('seed', Date.now() % 100000));
const SEED = seed;
/** Deterministic for a seed, so that a failing soak can be run again as it was. */
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const between = (a, b) => a + Math.floor(rand() * (b - a));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'auditfwd');
const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) => readFileSync(join(ROOT, 'test/fixtures/k8s-audit', f), 'utf8').split('\n').filter(Boolean));
const line = (k) => `{"seq":${k},` + sample[k % sample.length].slice(1) + '\n';

/** Lines per second the writer aims at, and the spill's fsync interval (auditfwd's default). */
const RATE = 1500;
const SPILL_FSYNC_S = 1;
const QUICK_SAVE_S = 0.05;
const RELP_WINDOW = 1024;
// --tcp-resend-window auto on this machine (the binary sizes it the same way, from /proc).
const RESEND_WINDOW_BYTES = autoWindowBytes(1);
const SHORTEST_LINE = Math.min(...sample.map((l) => Buffer.byteLength(l)));

// ---- drains -----------------------------------------------------------------------------------

/** Collects seqs; checks every message for NUL bytes and emptiness. */
class Received {
  seqs = [];
  nul = 0;
  empty = 0;
  add(msg) {
    if (msg.length === 0) this.empty++;
    if (msg.includes(0)) this.nul++;
    const m = /"seq":(\d+),/.exec(msg.toString('latin1'));
    if (m) this.seqs.push(Number(m[1]));
    else if (msg.length > 0) this.empty++; // a message that is not one of our lines (a fragment) counts as bad
  }
}

/** The test receiver: octet-counted RFC 5424 over TCP; can go away (outage) and read slowly. */
class TestReceiver {
  name = 'test receiver (tcp)';
  got = new Received();
  slow = false;
  sockets = new Set();
  async start() {
    this.server = createServer((s) => this.accept(s));
    this.server.listen(this.port ?? 0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
  }
  get to() {
    return `127.0.0.1:${this.port}`;
  }
  accept(s) {
    this.sockets.add(s);
    let pending = Buffer.alloc(0);
    s.on('data', (d) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      for (;;) {
        const sp = pending.indexOf(0x20);
        if (sp === -1) break;
        const len = Number(pending.subarray(0, sp).toString());
        if (pending.length < sp + 1 + len) break;
        const frame = pending.subarray(sp + 1, sp + 1 + len);
        pending = pending.subarray(sp + 1 + len);
        // MSG: after the 7th space-separated header field (PRI+VER TS HOST APP PROCID MSGID SD).
        let i = 0;
        let at = 0;
        while (i < 6 && at !== -1) ((at = frame.indexOf(0x20, at) + 1), i++);
        let msg = frame.subarray(at);
        if (msg[0] === 0x2d) msg = msg.subarray(2);
        else if (msg[0] === 0x5b) msg = msg.subarray(msg.indexOf(']') + 2);
        this.got.add(msg);
      }
      if (this.slow) {
        s.pause();
        setTimeout(() => s.resume(), 20);
      }
    });
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
  }
  async outage(ms) {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    await sleep(ms);
    await this.start();
  }
  async stop() {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

/** A real rsyslogd with imrelp, writing each MSG to a file; outages are SIGTERM and a restart. */
class RsyslogReceiver {
  name = 'rsyslog (relp)';
  slow = false;
  constructor(dir) {
    this.dir = dir;
    mkdirSync(join(dir, 'work'), { recursive: true });
  }
  static available() {
    return existsSync('/usr/sbin/rsyslogd') && existsSync('/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so');
  }
  async start() {
    if (!this.port) {
      const srv = createServer().listen(0, '127.0.0.1');
      await once(srv, 'listening');
      this.port = srv.address().port;
      srv.close();
      writeFileSync(
        join(this.dir, 'rsyslog.conf'),
        [
          `global(workDirectory="${this.dir}/work" maxMessageSize="256k")`,
          `main_queue(queue.type="Direct")`,
          `module(load="imrelp")`,
          `template(name="out" type="string" string="%msg%\\n")`,
          `ruleset(name="out") {`,
          `  action(type="omfile" file="${this.dir}/out.log" template="out" asyncWriting="off" flushOnTXEnd="on" ioBufferSize="256k")`,
          `}`,
          `input(type="imrelp" port="${this.port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")`,
          '',
        ].join('\n'),
      );
    }
    this.child = spawn('/usr/sbin/rsyslogd', ['-n', '-f', join(this.dir, 'rsyslog.conf'), '-i', join(this.dir, 'pid')], { stdio: 'ignore' });
    this.exited = once(this.child, 'exit');
    const deadline = Date.now() + 15000;
    while (!(await accepts(this.port))) {
      if (Date.now() > deadline) throw new Error('rsyslogd did not listen');
      await sleep(20); // rsyslogd has no readiness signal
    }
  }
  get to() {
    return `relp://127.0.0.1:${this.port}`;
  }
  async outage(ms) {
    await this.stop();
    await sleep(ms);
    await this.start();
  }
  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await this.exited;
    }
  }
  get got() {
    const r = new Received();
    const f = join(this.dir, 'out.log');
    if (!existsSync(f)) return r;
    const text = readFileSync(f);
    let at = 0;
    for (let lf = text.indexOf(0x0a); lf !== -1; at = lf + 1, lf = text.indexOf(0x0a, at)) r.add(text.subarray(at, lf));
    return r;
  }
}

function accepts(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

// ---- writers ------------------------------------------------------------------------------------

/** kube-apiserver's lumberjack: O_TRUNC, no O_APPEND, own position; rename at maxsize; optional gzip. */
class Lumberjack {
  next = 0;
  rotations = 0;
  constructor(path, maxBytes) {
    this.path = path;
    this.maxBytes = maxBytes;
    this.open();
  }
  open() {
    this.fd = openSync(this.path, 'w');
    this.pos = 0;
  }
  write(n) {
    let s = '';
    for (let i = 0; i < n; i++) s += line(this.next++);
    const buf = Buffer.from(s);
    writeSync(this.fd, buf, 0, buf.length, this.pos);
    this.pos += buf.length;
    if (this.pos >= this.maxBytes) this.rotate();
  }
  rotate() {
    closeSync(this.fd);
    const ts = new Date(Date.now() + this.rotations).toISOString().replace(/:/g, '-').replace('Z', '');
    const backup = this.path.replace(/\.log$/, `-${ts}.log`);
    renameSync(this.path, backup);
    this.rotations++;
    this.open();
    // lumberjack's mill: gzip straight into <backup>.gz, then delete the backup.
    if (COMPRESS) setTimeout(() => (writeFileSync(`${backup}.gz`, gzipSync(readFileSync(backup))), unlinkSync(backup)), between(50, 500));
  }
  close() {
    closeSync(this.fd);
  }
}

/**
 * The stemcell's logrotate on audit.log: copytruncate, rotate 7; with --compress, the previous copy is
 * gzipped (delaycompress), without it the copies stay plain (.1 … .7).
 */
function logrotate(path) {
  const gz = COMPRESS ? '.gz' : '';
  if (existsSync(`${path}.7${gz}`)) unlinkSync(`${path}.7${gz}`);
  for (let n = 6; n >= 2; n--) if (existsSync(`${path}.${n}${gz}`)) renameSync(`${path}.${n}${gz}`, `${path}.${n + 1}${gz}`);
  if (existsSync(`${path}.1`)) {
    // logrotate gives the .gz the time of the file it compressed (its test 108): backups are ordered by it.
    if (COMPRESS) {
      const { atime, mtime } = statSync(`${path}.1`);
      writeFileSync(`${path}.2.gz`, gzipSync(readFileSync(`${path}.1`)));
      utimesSync(`${path}.2.gz`, atime, mtime);
      unlinkSync(`${path}.1`);
    }
    else renameSync(`${path}.1`, `${path}.2`);
  }
  copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
}

// ---- one run --------------------------------------------------------------------------------------

async function oneRun(index, drain, dir, seconds) {
  const logDir = join(dir, 'kube-apiserver');
  mkdirSync(logDir, { recursive: true });
  const file = join(logDir, 'audit.log');
  await drain.start();
  // Runs 2 and 3 of every four read the lines as audit events (the scanner's WebAssembly in the real process), with either drain.
  const format = Math.floor(index / 2) % 2 === 1 ? 'k8s-audit' : 'raw';
  const fwdArgs = ['--file', file, '--to', drain.to, '--state-dir', join(dir, 'state'), '--shutdown-timeout', '2s', '--format', format];
  const figures = { kills: 0, terms: 0, outages: 0, slows: 0, copytruncates: 0 };
  /** What happened when, as the seq the writer had reached: a lost range is read against it. */
  const events = [];
  const note = (what) => events.push(`${what}@${lj.next}`);
  let fwd;
  let stderr = '';
  const startFwd = () => {
    fwd = spawn('env', ['-u', 'NODE_OPTIONS', BIN, ...fwdArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    fwd.stderr.on('data', (d) => ((stderr = (stderr + d).slice(-20000)), appendFileSync(join(dir, 'auditfwd.log'), d)));
    fwd.exited = once(fwd, 'exit');
  };
  const lj = new Lumberjack(file, 3 * 1024 * 1024);
  startFwd();
  // The check counts from line 0: auditfwd follows the file before the writer and the troubles begin.
  // (On a loaded machine a first process killed before it started leaves no state, and the next one,
  // without history, rightly takes what was rotated before it started for old history.)
  await new Promise((resolve, reject) => {
    const seen = (d) => String(d).includes('"msg":"following file"') && (fwd.stderr.off('data', seen), resolve());
    fwd.stderr.on('data', seen);
    fwd.exited.then(() => reject(new Error(`auditfwd exited before following the file: ${stderr}`)));
  });
  const end = Date.now() + seconds * 1000;
  let writing = true;
  const writer = (async () => {
    const t0 = Date.now();
    while (writing) {
      const due = Math.floor(((Date.now() - t0) / 1000) * RATE) - lj.next;
      if (due > 0) lj.write(Math.min(due, 200));
      await sleep(10);
    }
  })();
  const rotator = (async () => {
    while (writing) {
      await sleep(between(3000, 7000));
      if (!writing) break;
      note('copytruncate');
      logrotate(file);
      figures.copytruncates++;
    }
  })();
  const troubles = (async () => {
    while (Date.now() < end - 1500) {
      await sleep(between(700, 2500));
      const what = rand();
      if (what < 0.4) {
        note('kill-9');
        fwd.kill('SIGKILL');
        await fwd.exited;
        figures.kills++;
        await sleep(between(100, 700));
        startFwd();
      } else if (what < 0.55) {
        note('term');
        fwd.kill('SIGTERM');
        await fwd.exited;
        figures.terms++;
        await sleep(between(100, 500));
        startFwd();
      } else if (what < 0.8) {
        note('outage');
        await drain.outage(between(300, 2000));
        note('back');
        figures.outages++;
      } else {
        note('slow');
        drain.slow = true;
        await sleep(between(500, 2000));
        drain.slow = false;
        figures.slows++;
      }
    }
  })();
  await troubles;
  writing = false;
  await Promise.all([writer, rotator]);
  lj.close();
  const written = lj.next;
  // Everything arrives: wait for the last line, then give the forwarder its SIGTERM.
  const deadline = Date.now() + 60000;
  let got;
  for (;;) {
    got = drain.got;
    if (new Set(got.seqs).size >= written || Date.now() > deadline) break;
    await sleep(250); // the receiver (rsyslog's file) has no event to wait on
  }
  fwd.kill('SIGTERM');
  await fwd.exited;
  got = drain.got;
  await drain.stop();
  const seen = new Set(got.seqs);
  let lost = 0;
  const missing = [];
  for (let i = 0; i < written; i++) {
    if (seen.has(i)) continue;
    lost++;
    const last = missing[missing.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else missing.push([i, i]);
  }
  if (lost) stderr += `\nsoak: lost seqs ${missing.slice(0, 10).map(([a, b]) => (a === b ? a : `${a}-${b}`)).join(', ')}\nsoak: events (seq written then): ${events.join(', ')}\n`;
  const firsts = [];
  const met = new Set();
  for (const s of got.seqs) if (!met.has(s)) (met.add(s), firsts.push(s));
  const outOfOrder = firsts.filter((s, i) => i > 0 && s < firsts[i - 1]).length;
  const at = firsts.findIndex((s, i) => i > 0 && s < firsts[i - 1]);
  if (at > 0) stderr += `\nsoak: first out of order: ${firsts.slice(Math.max(0, at - 3), at + 3).join(',')}\n`;
  if (lost > 0) {
    const ranges = [];
    for (let i = 0; i < written; i++) {
      if (seen.has(i)) continue;
      const last = ranges[ranges.length - 1];
      if (last && last[1] === i - 1) last[1] = i;
      else ranges.push([i, i]);
    }
    stderr += `\nsoak: lost ${ranges.slice(0, 10).map(([a, b]) => (a === b ? a : `${a}-${b}`)).join(', ')}${ranges.length > 10 ? ' …' : ''}\n`;
  }
  const duplicates = got.seqs.length - seen.size;
  // The documented bound: per kill -9, the lines handed on in the last ~50 ms plus one spill fsync
  // interval of spilled lines, and over RELP the unacknowledged window (sent, not acknowledged: sent
  // again); per drain outage over RELP, the unacknowledged window; per drain outage over plain TCP,
  // what --tcp-resend-window sends again (auto: its size in the shortest lines).
  const relp = drain instanceof RsyslogReceiver;
  const perKill = RATE * (QUICK_SAVE_S + SPILL_FSYNC_S) + (relp ? RELP_WINDOW : 0);
  const perOutage = relp ? RELP_WINDOW : RESEND_WINDOW_BYTES / SHORTEST_LINE;
  const bound = Math.ceil(figures.kills * perKill + figures.outages * perOutage);
  return { index, drain: drain.name, format, written, delivered: got.seqs.length, lost, duplicates, bound, outOfOrder, nul: got.nul, empty: got.empty, rotations: lj.rotations, ...figures, stderr };
}

// ---- main ---------------------------------------------------------------------------------------------

const base = mkdtempSync(join(tmpdir(), 'auditfwd-soak-'));
const rsyslog = RsyslogReceiver.available();
if (!rsyslog) console.error('soak: rsyslogd with imrelp not found (Debian packages rsyslog, rsyslog-relp): every run uses the test receiver');
const results = [];
let failed = false;
try {
  for (let i = 0; i < RUNS; i++) {
    const dir = join(base, `run${i}`);
    mkdirSync(dir);
    const drain = rsyslog && i % 2 === 1 ? new RsyslogReceiver(join(dir, 'rsyslog')) : new TestReceiver();
    const r = await oneRun(i, drain, dir, SECONDS / RUNS);
    const ok = r.lost === 0 && r.outOfOrder === 0 && r.nul === 0 && r.empty === 0 && r.duplicates <= r.bound;
    console.log(
      `run ${i} (${r.drain}, --format ${r.format}): lines ${r.written}, delivered ${r.delivered}, lost ${r.lost}, duplicates ${r.duplicates} (bound ${r.bound}), out of order ${r.outOfOrder}, NUL ${r.nul}, empty ${r.empty}; ` +
        `kill -9 ${r.kills}, SIGTERM ${r.terms}, drain outages ${r.outages}, slow drain ${r.slows}, lumberjack rotations ${r.rotations}, copytruncates ${r.copytruncates} ${ok ? 'ok' : 'FAILED'}`,
    );
    if (!ok) {
      failed = true;
      console.log(r.stderr.split('\n').slice(-40).join('\n'));
    }
    results.push(r);
  }
} finally {
  if (!failed) rmSync(base, { recursive: true, force: true });
  else console.log(`soak: files kept in ${base}`);
}
const sum = (k) => results.reduce((a, r) => a + r[k], 0);
console.log(
  `soak (seed ${SEED}${COMPRESS ? ', compress' : ''}): runs ${results.length}, lines ${sum('written')}, kills ${sum('kills')} (kill -9) + ${sum('terms')} (SIGTERM), ` +
    `rotations ${sum('rotations')} + ${sum('copytruncates')} copytruncate, outages ${sum('outages')}, lost=${sum('lost')}, duplicates ${sum('duplicates')} (bound ${sum('bound')}) ${failed ? 'FAILED' : 'ok'}`,
);
process.exit(failed ? 1 : 0);
