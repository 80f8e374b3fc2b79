import t from 'tap';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { savedOffset } from '../helpers/state.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

/**
 * The real process against real rotations: every line is a real audit event numbered by `"seq"`, so
 * lost, repeated and reordered lines are counted, not guessed.
 */

const FAST = ['--poll-interval', '200ms', '--rotate-wait', '300ms', '--checkpoint-interval', '100ms'];

async function startDrain(t: Tap.Test) {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  return drain;
}

const lines = numberedAuditLines(4000);
const text = (from: number, to: number) => lines.slice(from, to).join('\n') + '\n';
const seqs = (drain: TestDrain) => drain.messages.map((m) => seqOf(parseRfc5424(m).msg.toString()));

function tally(got: number[], expected: number) {
  const seen = new Map<number, number>();
  for (const s of got) seen.set(s, (seen.get(s) ?? 0) + 1);
  let lost = 0;
  for (let i = 0; i < expected; i++) if (!seen.has(i)) lost++;
  const repeated = [...seen.values()].reduce((a, n) => a + n - 1, 0);
  const firsts = got.filter((s, i) => got.indexOf(s) === i);
  const inOrder = firsts.every((s, i) => i === 0 || s > firsts[i - 1]);
  return { lost, repeated, inOrder };
}

t.test('rename+create (kube-apiserver names, with a late writer), copytruncate, delete+recreate, while running', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const drain = await startDrain(t);
  writeFileSync(file, text(0, 300));
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), ...FAST]);
  await drain.waitFor(100);

  // kube-apiserver: rename, a write that still lands in the old file, then the new file.
  renameSync(file, join(dir, 'kube-apiserver', 'audit-2026-11-22T10-00-00.000.log'));
  appendFileSync(join(dir, 'kube-apiserver', 'audit-2026-11-22T10-00-00.000.log'), text(300, 400));
  writeFileSync(file, text(400, 700));
  await drain.waitFor(700);

  // copytruncate with lines not yet read: they are read from the copy, the rest from the start.
  appendFileSync(file, text(700, 1000));
  copyFileSync(file, `${file}.1`);
  truncateSync(file, 0);
  appendFileSync(file, text(1000, 1200));
  await drain.waitFor(1200);

  // delete and recreate.
  unlinkSync(file);
  writeFileSync(file, text(1200, 1400));
  await drain.waitFor(1400);

  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'SIGTERM exits 0', { stderr: run.stderr() });
  const r = tally(seqs(drain), 1400);
  t.same(r, { lost: 0, repeated: 0, inOrder: true }, 'exactly once, old file before new in each rotation');
  t.equal(drain.messages.length, 1400);
});

t.test('a glob: one APP-NAME per matched file, a new match is picked up', async (t) => {
  const dir = t.testdir({ logs: { api: { 'audit.log': 'api-1\napi-2\n' }, etcd: { 'audit.log': 'etcd-1\n' } }, state: {} });
  const drain = await startDrain(t);
  const run = runAuditfwd(t, ['--file', join(dir, 'logs', '*', '*.log'), '--to', drain.address, '--state-dir', join(dir, 'state'), ...FAST]);
  await drain.waitFor(3);
  mkdirSync(join(dir, 'logs', 'scheduler'));
  writeFileSync(join(dir, 'logs', 'scheduler', 'audit.log'), 'sched-1\n');
  await drain.waitFor(4);
  appendFileSync(join(dir, 'logs', 'etcd', 'audit.log'), 'etcd-2\n');
  await drain.waitFor(5);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  const byApp: Record<string, string[]> = {};
  for (const m of drain.messages.map((x) => parseRfc5424(x))) (byApp[m.appName ?? '-'] ??= []).push(m.msg.toString());
  t.same(byApp, { api: ['api-1', 'api-2'], etcd: ['etcd-1', 'etcd-2'], scheduler: ['sched-1'] });
});

t.test('SIGTERM: exits 0 quickly with offsets saved (0600); a restart after a rename rotation finishes the old file first, repeats nothing', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const state = join(dir, 'state');
  const drain = await startDrain(t);
  writeFileSync(file, text(0, 500));
  const args = ['--file', file, '--to', drain.address, '--state-dir', state, ...FAST];
  const run = runAuditfwd(t, args);
  await drain.waitFor(500);
  appendFileSync(file, text(500, 800));
  const t0 = Date.now();
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'exit 0');
  const stopMs = Date.now() - t0;
  t.ok(stopMs < 3000, `stopped in ${stopMs} ms`);
  t.equal(statSync(join(state, 'checkpoints.json')).mode & 0o777, 0o600, 'state file 0600');
  const saved = JSON.parse(readFileSync(join(state, 'checkpoints.json'), 'utf8')).files as Array<{ offset: number }>;
  t.equal(saved.length, 1);
  // Handed on = written to the drain's socket or fsynced in the spill: the saved offset is a line end
  // at or past what the drain got, and the spill holds the rest for the next run.
  const sent = drain.messages.length;
  const lineEnds = new Set(Array.from({ length: 801 }, (_, k) => Buffer.byteLength(k === 0 ? '' : text(0, k))));
  t.ok(lineEnds.has(saved[0].offset) && saved[0].offset >= Buffer.byteLength(text(0, sent)), 'the saved offset is a line end covering what was delivered');

  // While stopped: kube-apiserver rotates; the saved identity now lives under the rotated name.
  appendFileSync(file, text(800, 900));
  renameSync(file, join(dir, 'kube-apiserver', 'audit-2026-11-22T10-00-00.000.log'));
  writeFileSync(file, text(900, 1000));
  const again = runAuditfwd(t, args);
  await drain.waitFor(1000);
  t.match(again.stderr(), /finishing rotated files first/);
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
  t.same(tally(seqs(drain), 1000), { lost: 0, repeated: 0, inOrder: true }, 'nothing lost, nothing repeated, rotated file first');
  t.comment(`SIGTERM to exit: ${stopMs} ms`);
});

t.test('kill -9 mid-stream, a rotation while dead, restart: nothing lost, repeats bounded', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const drain = await startDrain(t);
  writeFileSync(file, '');
  const args = ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), ...FAST];
  const run = runAuditfwd(t, args);
  await run.waitForLog(/following file/);
  // Written in steps while it forwards; killed while lines are in flight.
  for (let k = 0; k < 1500; k += 100) appendFileSync(file, text(k, k + 100));
  await drain.waitFor(1000);
  await savedOffset(join(dir, 'state'), 1);
  for (let k = 1500; k < 2000; k += 100) appendFileSync(file, text(k, k + 100));
  await drain.waitFor(1600);
  run.child.kill('SIGKILL');
  await run.exited;
  const beforeKill = drain.messages.length;
  const saved = await savedOffset(join(dir, 'state'), 0);
  let covered = 0;
  for (let bytes = 0; covered < 2000 && bytes + Buffer.byteLength(lines[covered]) + 1 <= saved; covered++) bytes += Buffer.byteLength(lines[covered]) + 1;
  // A rotation while it is dead: the rest of the old file is only under its rotated name.
  appendFileSync(file, text(2000, 2200));
  renameSync(file, `${file}.1`);
  writeFileSync(file, text(2200, 2500));
  const again = runAuditfwd(t, args);
  const r0 = await waitAll(drain, 2500).catch((err) => {
    t.fail(String(err), { stderr: again.stderr() });
    return false;
  });
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
  const r = tally(seqs(drain), 2500);
  t.equal(r.lost, 0, 'nothing lost');
  t.equal(r0, true, 'every seq arrived');
  // The bound: only lines handed on after the last state save (at most one --checkpoint-interval's
  // worth) are sent again.
  t.ok(r.repeated <= beforeKill - covered, `repeated ${r.repeated}; handed on after the last save: ${beforeKill - covered}`);
  t.comment(`kill -9: ${beforeKill} delivered before the kill, last save covered ${covered}, ${r.repeated} repeated after restart`);
});


/** Resolves once every seq below n arrived (duplicates make the message count an unreliable signal). */
async function waitAll(drain: TestDrain, n: number, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const seen = new Set(seqs(drain));
    const missing: number[] = [];
    for (let i = 0; i < n; i++) if (!seen.has(i)) missing.push(i);
    if (missing.length === 0) return true;
    const left = deadline - Date.now();
    const more = await Promise.race([drain.waitFor(drain.messages.length + 1).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, left)).unref())]);
    if (!more) throw new Error(`after ${ms} ms, ${missing.length} seqs missing, first ${missing.slice(0, 5).join(',')}`);
  }
}

t.test('follow latency: write to arrival', async (t) => {
  const dir = t.testdir({ app: { 'audit.log': '' }, state: {} });
  const file = join(dir, 'app', 'audit.log');
  const drain = await startDrain(t);
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), '--poll-interval', '1s']);
  await run.waitForLog(/following file/);
  await run.waitForLog(/connected to drain/);
  const ms: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t0 = process.hrtime.bigint();
    appendFileSync(file, lines[i] + '\n');
    await drain.waitFor(i + 1);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  // Stopped here, not by the teardown: its state file keeps changing and the folder is removed too.
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  ms.sort((a, b) => a - b);
  const p50 = ms[49];
  const p99 = ms[98];
  t.comment(`follow latency over 100 writes: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${ms[99].toFixed(1)} ms`);
  // The target is p99 < 100 ms; the assertion leaves room for a loaded CI machine. fs.watch, not the
  // 1 s poll, is what wakes the reader: a poll-driven reader would show p50 near 500 ms.
  t.ok(p50 < 100, `p50 ${p50.toFixed(1)} ms`);
  t.ok(p99 < 500, `p99 ${p99.toFixed(1)} ms`);
});
