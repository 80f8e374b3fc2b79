#!/usr/bin/env node
// `npm run bench`: every contender forwards the same file of real audit lines to one receiver on
// 127.0.0.1; prints the side-by-side table. Nothing in the repository changes unless asked:
// temporary data (the input files, about 1.5 GB for a full run) lives in a folder under the
// system's temporary directory that is removed at the end, and only --write-results writes the
// results file, bench/RESULTS.md.
//   npm run bench                      full run: 500 MB input, medians of 3 runs, 8 s latency runs
//   npm run bench -- --write-results   the same, and writes bench/RESULTS.md
//   npm run bench -- --quick           smoke run: 50 MB, 1 run, 3 s latency runs (a minute or so)
//   npm run bench -- --mb 100 --runs 5 --follow-seconds 5 --only 'floor|raw' --skip dead
// Each flag also reads from the environment: BENCH_MB, BENCH_RUNS, BENCH_FOLLOW_S, BENCH_ONLY,
// BENCH_SKIP (throughput,follow,dead), BENCH_TMPDIR (where the temporary folder goes).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contenders, detectFeatures } from './lib/contenders.mjs';
import { auditLine, buildInput, sampleLines, SEQ_RE } from './lib/input.mjs';
import { GNU_TIME, machine, measured, median, percentile, rssOf } from './lib/measure.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { tlsMaterial } from './lib/tls-material.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const BIN = join(REPO, 'bin/auditfwd');
const FULL_MB = 500;
const DEAD_MB = 1000;
const STALL_MS = 10_000;

/** `--name value` / `--name=value` flags over BENCH_* variables over defaults. */
function options(argv, env) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) usage(`unexpected argument ${argv[i]}`);
    if (m[1] === 'quick' || m[1] === 'help' || m[1] === 'write-results') flags[m[1]] = true;
    else flags[m[1]] = m[2] ?? argv[++i];
  }
  if (flags.help) usage();
  const known = ['quick', 'mb', 'runs', 'follow-seconds', 'only', 'skip', 'write-results'];
  for (const k of Object.keys(flags)) if (!known.includes(k)) usage(`unknown flag --${k}`);
  const quick = flags.quick === true;
  const num = (name, envName, full, smoke) => {
    const v = Number(flags[name] ?? env[envName] ?? (quick ? smoke : full));
    if (!(v > 0)) usage(`--${name} must be a positive number`);
    return v;
  };
  const only = flags.only ?? env.BENCH_ONLY;
  const skip = String(flags.skip ?? env.BENCH_SKIP ?? '').split(',').filter(Boolean);
  for (const p of skip) if (!['throughput', 'follow', 'dead'].includes(p)) usage(`--skip takes throughput, follow, dead`);
  const o = {
    mb: num('mb', 'BENCH_MB', FULL_MB, 50),
    runs: num('runs', 'BENCH_RUNS', 3, 1),
    followS: num('follow-seconds', 'BENCH_FOLLOW_S', 8, 3),
    only: only ? new RegExp(only, 'i') : undefined,
    skip: new Set(skip),
  };
  o.full = !quick && !only && skip.length === 0 && o.mb >= FULL_MB;
  o.writeResults = flags['write-results'] === true;
  return o;
}

function usage(problem) {
  process.stderr.write(
    (problem ? `bench: ${problem}\n` : '') +
      'usage: npm run bench [-- --quick] [--write-results] [--mb N] [--runs N] [--follow-seconds N] [--only REGEXP] [--skip throughput,follow,dead]\n',
  );
  process.exit(problem ? 2 : 0);
}

const OPTS = options(process.argv.slice(2), process.env);
const MB = OPTS.mb;
const RUNS = OPTS.runs;
const FOLLOW_S = OPTS.followS;
const FOLLOW_RATE = 5000;
const ONLY = OPTS.only;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(t));
}

async function runOnce(c, input, scratch, tls) {
  const receiver = await startReceiver({ ...c.receiver, tls });
  const dir = mkdtempSync(join(scratch, 'run-'));
  let m;
  let ended = false;
  try {
    const spec = c.start({ file: input.path, framed: input.framedPath, port: receiver.port, dir, tls: { caFile: tls?.caFile }, follow: false });
    const target = c.receiver.count === 'bytes' ? input.bytes : input.lines;
    const done = receiver.expect(target);
    const t0 = now();
    m = measured(spec.cmd, spec.args, { timeFile: join(dir, 'time.txt'), env: spec.env });
    const exited = m.exited.then(async (r) => {
      if (!spec.selfExits || r.code !== 0) throw new Error(`${c.name} exited early (${r.code ?? r.signal}): ${r.stderr.slice(-500)}`);
      // Its last bytes may still be on their way to the receiver (cat exits as soon as it wrote them).
      return withTimeout(done, 10_000, `${c.name} exited, receiver still short (${receiver.frames} frames, ${receiver.bytes} bytes)`);
    });
    exited.catch(() => {}); // settled after the race, when we stop a contender that does not exit itself
    // A contender whose output stops for STALL_MS fails the run rather than hold the bench for minutes
    // (seen with syslog-ng before its log path had flags(flow-control): it dropped what its
    // destination's queue could not take, and the receiver waited for lines that never came).
    let seen = -1;
    let stalled;
    const stall = new Promise((_, reject) => {
      let since = now();
      stalled = setInterval(() => {
        const n = receiver.frames + receiver.bytes;
        if (n !== seen) [seen, since] = [n, now()];
        else if (now() - since > STALL_MS) reject(new Error(`${c.name}: stalled at ${receiver.frames} frames of ${target} (nothing for ${STALL_MS / 1000} s)`));
      }, 500);
    });
    const lastAt = await withTimeout(Promise.race([done, exited, stall]), Math.max(120_000, MB * 600), c.name).finally(() => clearInterval(stalled));
    if (!spec.selfExits) m.stop();
    const r = await withTimeout(m.exited, 30_000, `${c.name} exit`);
    ended = true;
    const seconds = (lastAt - t0) / 1000;
    // First to last byte: the rate once running, start-up left out.
    const streaming = (lastAt - receiver.firstAt) / 1000;
    return { seconds, streaming, cpu: r.cpu, rssMB: r.rssMB, frames: receiver.frames, bytes: receiver.bytes };
  } finally {
    // A failed run (stalled, timed out) must not leave its contender running into the next one.
    if (m && !ended) {
      m.stop('SIGKILL');
      await withTimeout(m.exited, 10_000, `${c.name} exit after SIGKILL`).catch(() => {});
    }
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Write-to-arrival latency while the contender follows a file growing at a steady FOLLOW_RATE lines/s. */
async function followOnce(c, scratch) {
  const dir = mkdtempSync(join(scratch, 'follow-'));
  const file = join(dir, 'audit.log');
  closeSync(openSync(file, 'w'));
  const samples = sampleLines();
  const written = new Map();
  const lat = [];
  const receiver = await startReceiver({
    transport: c.receiver.transport,
    count: c.receiver.followCount ?? c.receiver.count,
    onMessage: (msg) => {
      const m = SEQ_RE.exec(msg.toString('latin1'));
      if (!m) return;
      const at = written.get(parseInt(m[1], 16));
      if (at !== undefined) lat.push(now() - at);
    },
  });
  const spec = c.start({ file, port: receiver.port, dir, follow: true });
  const m = measured(spec.cmd, spec.args, { timeFile: join(dir, 'time.txt'), env: spec.env });
  try {
    const fd = openSync(file, 'a');
    let seq = 0;
    const write = (n) => {
      let text = '';
      const first = seq;
      for (let i = 0; i < n; i++, seq++) text += auditLine(samples[seq % samples.length], seq);
      writeSync(fd, text);
      const t = now();
      for (let s = first; s < seq; s++) written.set(s, t);
    };
    // Warm-up: one line through, so start-up is not counted as latency.
    write(1);
    await withTimeout(receiver.expect(1), 20_000, `${c.name} warm-up`);
    lat.length = 0;
    const t0 = now();
    const first = seq;
    let rss = [];
    await new Promise((resolveWrite) => {
      const timer = setInterval(() => {
        const elapsed = (now() - t0) / 1000;
        const due = Math.min(FOLLOW_S, elapsed) * FOLLOW_RATE - (seq - first);
        if (due >= 1) write(Math.floor(due));
        if (elapsed > FOLLOW_S / 2 && rss.length < 20) rss.push(rssOf(m.pid));
        if (elapsed >= FOLLOW_S) {
          clearInterval(timer);
          resolveWrite();
        }
      }, 2);
    });
    closeSync(fd);
    await withTimeout(receiver.expect(seq), 20_000, `${c.name} follow`);
    lat.sort((a, b) => a - b);
    return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1], lines: lat.length, rssMB: median(rss.map((r) => r.rss)), anonMB: median(rss.map((r) => r.anon)) };
  } finally {
    m.stop();
    await m.exited.catch(() => {});
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Peak RSS while the drain accepts the connection and never reads: the backlog is the whole input. */
async function deadDrainOnce(c, input, scratch) {
  const dir = mkdtempSync(join(scratch, 'dead-'));
  const receiver = await startReceiver({ ...c.receiver, readPaused: true });
  const spec = c.start({ file: input.path, port: receiver.port, dir, follow: true });
  const m = measured(spec.cmd, spec.args, { timeFile: join(dir, 'time.txt'), env: spec.env });
  try {
    let peak = 0;
    let anon = 0;
    let stableSince = now();
    const t0 = now();
    while (now() - t0 < 30_000) {
      await sleep(200);
      const r = rssOf(m.pid);
      anon = Math.max(anon, r.anon);
      if (r.hwm > peak + 0.5) {
        peak = r.hwm;
        stableSince = now();
      }
      if (peak > 0 && now() - stableSince > 4000) break;
    }
    return { peakMB: peak, anonMB: anon };
  } finally {
    m.stop();
    await m.exited.catch(() => {});
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

function table(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const md = (r) => '| ' + r.join(' | ') + ' |';
  return {
    text: [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'),
    md: [md(head), '|' + head.map((_, i) => (i === 0 ? '---' : '---:')).join('|') + '|', ...rows.map(md)].join('\n'),
  };
}

async function main() {
  if (!existsSync(join(REPO, 'dist/auditfwd.js'))) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  // Everything temporary in one folder outside the repository, removed at the end (also on ^C).
  const scratch = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), 'auditfwd-bench-'));
  const cleanUp = () => rmSync(scratch, { recursive: true, force: true });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      cleanUp();
      process.exit(130);
    });
  }
  const started = now();
  const m = machine();
  try {
    log(`bench: building a ${MB} MB input file of real audit lines in ${scratch}…`);
    const input = buildInput(scratch, MB);
    execFileSync('cat', [input.path], { stdio: ['ignore', 'ignore', 'ignore'] }); // page cache, for every contender alike
    const features = detectFeatures(BIN);
    const all = contenders(BIN, features).filter((c) => !ONLY || ONLY.test(c.name));
    const active = all.filter((c) => c.enabled);
    for (const c of all.filter((c) => !c.enabled)) log(`bench: skipping "${c.name}" (not available in this build or on this machine)`);
    const tls = active.some((c) => c.receiver.transport === 'tls') ? tlsMaterial(scratch) : undefined;

    const results = new Map(active.map((c) => [c.name, []]));
    for (let rep = 0; rep < (OPTS.skip.has('throughput') ? 0 : RUNS); rep++) {
      // Rotate the order so that no contender always runs right after the same neighbour.
      const order = active.map((_, i) => active[(i + rep) % active.length]);
      for (const c of order) {
        try {
          const r = await runOnce(c, input, scratch, tls);
          if (c.receiver.count === 'frames' && r.frames !== input.lines) throw new Error(`${r.frames} frames for ${input.lines} lines`);
          results.get(c.name).push(r);
          log(`bench: run ${rep + 1}/${RUNS} ${c.name}: ${fmt(r.seconds, 2)} s, cpu ${fmt(r.cpu, 2)} s, rss ${fmt(r.rssMB)} MB`);
        } catch (err) {
          log(`bench: run ${rep + 1}/${RUNS} ${c.name} FAILED: ${err.message}`);
        }
      }
    }
    const floor = median((results.get(active[0]?.name) ?? []).map((r) => r.seconds));
    const gb = input.bytes / 1e9;
    const tput = table(
      ['contender', 'time s', '× floor', 'lines/s', 'MB/s', 'MB/s once running', 'CPU s', 'CPU s per GB', 'peak RSS MB'],
      active.map((c) => {
        const rs = results.get(c.name);
        const s = median(rs.map((r) => r.seconds));
        const running = median(rs.map((r) => r.streaming));
        const cpu = median(rs.map((r) => r.cpu));
        const rss = rs.length ? Math.max(...rs.map((r) => r.rssMB)) : NaN;
        return [c.name, fmt(s, 2), fmt(s / floor, 2), int(input.lines / s), int(input.bytes / 1e6 / s), int(input.bytes / 1e6 / running), fmt(cpu, 2), fmt(cpu / gb, 2), fmt(rss)];
      }),
    );

    const followers = OPTS.skip.has('follow') ? [] : active.filter((c) => c.follow);
    const lat = new Map(followers.map((c) => [c.name, []]));
    for (let rep = 0; rep < RUNS; rep++) {
      for (const c of followers) {
        try {
          const r = await followOnce(c, scratch);
          lat.get(c.name).push(r);
          log(`bench: follow ${rep + 1}/${RUNS} ${c.followName ?? c.name}: p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, rss ${fmt(r.rssMB)} MB (private ${fmt(r.anonMB)} MB)`);
        } catch (err) {
          log(`bench: follow ${rep + 1}/${RUNS} ${c.name} FAILED: ${err.message}`);
        }
      }
    }
    const latency = table(
      ['follower', 'p50 ms', 'p99 ms', 'max ms', 'RSS MB', 'private MB'],
      followers.map((c) => {
        const rs = lat.get(c.name);
        return [c.followName ?? c.name, fmt(median(rs.map((r) => r.p50))), fmt(median(rs.map((r) => r.p99))), fmt(median(rs.map((r) => r.max))), fmt(median(rs.map((r) => r.rssMB))), fmt(median(rs.map((r) => r.anonMB)))];
      }),
    );

    const dead = [];
    const deadPeaks = [];
    const deadOnes = OPTS.skip.has('dead') ? [] : active.filter((c) => c.deadDrain);
    // A full run backs up 1 GB; smaller runs use their own input.
    const deadInput = deadOnes.length > 0 && MB < DEAD_MB && OPTS.full ? buildInput(scratch, DEAD_MB) : input;
    for (const c of deadOnes) {
      try {
        const r = await deadDrainOnce(c, deadInput, scratch);
        dead.push([c.name, fmt(r.peakMB), fmt(r.anonMB)]);
        if (c.name.startsWith('auditfwd')) deadPeaks.push(r.peakMB);
        log(`bench: dead drain ${c.name}: peak rss ${fmt(r.peakMB)} MB (private ${fmt(r.anonMB)} MB)`);
      } catch (err) {
        log(`bench: dead drain ${c.name} FAILED: ${err.message}`);
        dead.push([c.name, 'failed', 'failed']);
      }
    }
    const deadT = table(['contender', 'peak RSS MB', 'private MB'], dead);
    const goals = targets(active, results, lat, input, deadPeaks);

    const minutes = (now() - started) / 60000;
    const measuredWith = GNU_TIME ? 'GNU time (user+sys CPU, max RSS)' : '/proc polling every 50 ms (install Debian package `time` for exact figures)';
    const about =
      `${m.cores} × ${m.cpu}, ${m.memGB} GB RAM, Linux ${m.kernel}, Node.js ${m.node}; load average at start ${m.load}. ` +
      `Input: ${int(input.lines)} real audit lines (${fmt(input.bytes / 1e6, 0)} MB, mean ${int(input.bytes / input.lines)} bytes, unique auditIDs) ` +
      `from test/fixtures/k8s-audit. Medians of ${RUNS} runs (peak RSS: the highest of them); CPU and RSS measured with ${measuredWith}. ` +
      `Time runs from starting the contender to the last byte at the receiver, start-up included. ` +
      `RSS counts the program's mapped binary (about 40 MB of file pages for node, shared with every other node process); "private" is RssAnon, the memory of its own. ` +
      `Bench took ${fmt(minutes)} min.`;
    const skipped = all.filter((c) => !c.enabled).map((c) => c.name);
    const md = [
      `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${about}`,
      '',
      `Throughput: the whole file to one receiver on 127.0.0.1 (a Node process that counts frames). "MB/s once running" counts from the first byte at the receiver (start-up left out). ` +
        `"receiver check" sends an octet-framed copy of the file with cat, so the receiver counts frames at the floor's pace: it shows how fast the receiver can take frames, and so that it is not what limits the others.`,
      '',
      tput.md,
      '',
      `Latency from write to arrival while following a file that grows by ${int(FOLLOW_RATE)} lines/s for ${FOLLOW_S} s, and RSS meanwhile (steady state).`,
      '',
      latency.md,
      '',
      `Peak RSS while the drain accepts the connection and never reads, with ${fmt(deadInput.bytes / 1e6, 0)} MB waiting in the file.`,
      '',
      deadT.md,
      '',
      `Targets, from what was measured above.`,
      '',
      goals.md,
      ...(skipped.length ? ['', `Not run (not in this build, or not installed): ${skipped.join(', ')}.`] : []),
    ].join('\n');
    process.stdout.write(`\n${about}\n\n${tput.text}\n\n${latency.text}\n\n${deadT.text}\n\n${goals.text}\n`);
    if (OPTS.writeResults) {
      const doc = `# Benchmark results\n\nWritten by \`npm run bench -- --write-results\` (bench/run.mjs).\n\n${md}\n`;
      writeFileSync(join(HERE, 'RESULTS.md'), doc);
      log(`bench: results written to bench/RESULTS.md${OPTS.full ? '' : ' (not a full run)'}`);
    } else {
      log('bench: results not written (--write-results writes bench/RESULTS.md)');
    }
  } finally {
    cleanUp();
  }
}

/** The targets, from what was measured (n/a where a part was not run). */
function targets(active, results, lat, input, deadPeaks) {
  const med = (name, key) => median((results.get(name) ?? []).map((r) => r[key]));
  const named = (prefix) => active.find((c) => c.name.startsWith(prefix))?.name;
  const gb = input.bytes / 1e9;
  const raw = med('auditfwd raw', 'seconds');
  const rawCpu = med('auditfwd raw', 'cpu') / gb;
  const k8s = named('auditfwd --format k8s-audit');
  const k8sCpu = k8s ? med(k8s, 'cpu') / gb : NaN;
  const peers = ['rsyslog', 'syslog-ng'].map(named).filter(Boolean);
  const follow = lat.get('auditfwd raw') ?? [];
  const p99 = median(follow.map((r) => r.p99));
  const ours = active.filter((c) => c.name.startsWith('auditfwd') && (results.get(c.name) ?? []).length > 0);
  // Every row: the throughput runs, the followers and the never-reading drain.
  const following = [...lat].filter(([name]) => name.startsWith('auditfwd')).flatMap(([, rs]) => rs.map((r) => r.rssMB));
  const peaks = [...ours.flatMap((c) => results.get(c.name).map((r) => r.rssMB)), ...following, ...deadPeaks];
  const maxRss = peaks.length ? Math.max(...peaks) : NaN;
  const verdict = (ok, x) => (Number.isFinite(x) ? (ok ? 'met' : 'not met') : 'n/a');
  const unit = (x, d, u) => (Number.isFinite(x) ? `${fmt(x, d)}${u}` : 'n/a');
  const rows = [
    ['raw ≤ 2.5 CPU s per GB', unit(rawCpu, 2, ' s/GB'), verdict(rawCpu <= 2.5, rawCpu)],
    ['k8s-audit ≤ 2× raw CPU per GB', unit(k8sCpu / rawCpu, 2, '×'), verdict(k8sCpu / rawCpu <= 2, k8sCpu / rawCpu)],
    ['k8s-audit ≥ 250k events per CPU second', unit(k8s ? input.lines / med(k8s, 'cpu') / 1000 : NaN, 0, 'k'), verdict(input.lines / med(k8s, 'cpu') >= 250_000, k8s ? 1 : NaN)],
    ['peak RSS ≤ 64 MB in every auditfwd row', unit(maxRss, 1, ' MB'), verdict(maxRss <= 64, maxRss)],
    ...peers.flatMap((p) => {
      const x = med(p, 'seconds') / raw;
      const c = med(p, 'cpu') / gb;
      return [
        [`raw throughput ≥ 3× ${p.split(' ')[0]}`, unit(x, 2, '×'), verdict(x >= 3, x)],
        [`raw CPU per GB < ${p.split(' ')[0]}`, `${unit(rawCpu, 2, '')} vs ${unit(c, 2, '')}`, verdict(rawCpu < c, rawCpu + c)],
      ];
    }),
    ['follow p99 ≤ 50 ms', unit(p99, 1, ' ms'), verdict(p99 <= 50, p99)],
  ];
  return table(['target', 'measured', 'verdict'], rows);
}

main().catch((err) => {
  log(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
