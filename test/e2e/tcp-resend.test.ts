import t from 'tap';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DyingDrain } from '../helpers/dying-drain.js';
import { logEntries } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';

const LINES = 30_000;
const PAD = 'x'.repeat(480);
const line = (i: number) => `line ${String(i).padStart(6, '0')} ${PAD}`;

/** Sends LINES numbered lines through a drain that dies five times; returns what it received, counted. */
async function throughDyingDrain(t: Tap.Test, extra: string[]) {
  const dir = t.testdir({ state: {} });
  const file = join(dir, 'audit.log');
  writeFileSync(file, Array.from({ length: LINES }, (_, i) => line(i)).join('\n') + '\n');
  const drain = await DyingDrain.start(5, 1_500_000);
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--file', file, '--once', '--to', drain.address, '--state-dir', join(dir, 'state'), '--reconnect-max-delay', '200ms', '--log-format', 'json', ...extra]);
  const code = await run.exited;
  if (code !== 0) t.comment(run.stderr());
  t.equal(code, 0, 'exit 0');
  const seen = new Map<number, number>();
  for (const m of drain.messages) {
    const n = Number(/^line (\d+) /.exec(parseRfc5424(m).msg.toString())![1]);
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }
  let lost = 0;
  let dups = 0;
  const lostAt: number[] = [];
  for (let i = 0; i < LINES; i++) {
    const c = seen.get(i) ?? 0;
    if (c === 0) {
      lost++;
      if (lostAt.length === 0 || lostAt[lostAt.length - 1] !== i - 1) lostAt.push(i, i);
      else lostAt[lostAt.length - 1] = i;
    } else dups += c - 1;
  }
  // Where the lost lines were (first-last of each run of them): what the drain held at which death.
  if (lost > 0) t.comment(`lost lines: ${lostAt.map((n, k) => (k % 2 ? `-${n}` : ` ${n}`)).join('').trim()}`);
  const summary = logEntries(run.stderr()).find((e) => e.msg === 'all input delivered') ?? {};
  t.comment(`${extra.join(' ') || 'defaults'}: deaths ${drain.deaths}, received ${drain.messages.length}, lost ${lost}, duplicates ${dups}, resent (metric) ${String(summary.resent)}`);
  return { lost, dups, deaths: drain.deaths, resent: summary.resent as number | undefined };
}

// What a death loses is what both kernels held: our send buffer (up to tcp_wmem's maximum) and the
// drain's receive buffer (autotuned up to tcp_rmem's). The default, auto, is their sum; a fixed 4 MiB
// lost 568-591 lines in 4 runs of 10 on this loaded machine (the drain's buffer had grown past it).
t.test('with the default window (auto), a drain that dies mid-stream five times loses nothing', async (t) => {
  const { lost, dups, deaths, resent } = await throughDyingDrain(t, []);
  t.equal(deaths, 5, 'the drain died five times mid-stream');
  t.equal(lost, 0, 'no line lost');
  t.ok(dups > 0, 'lines held by the dead drain arrive again');
  t.ok(resent !== undefined && resent >= dups, `every resent message is counted (duplicates ${dups}, resent ${resent})`);
});

t.test('--tcp-resend-window 0: what the dead drain held is lost, as plain TCP does', async (t) => {
  const { lost, deaths, resent } = await throughDyingDrain(t, ['--tcp-resend-window', '0']);
  // Without resends less is sent again, so the input may run out before a fifth death.
  t.ok(deaths >= 3, `the drain died ${deaths} times`);
  t.ok(lost > 0, 'lines are lost without the window');
  t.equal(resent ?? 0, 0, 'nothing resent');
});

/** The process's open files whose path names the resend window's file. */
const windowFiles = (pid: number) =>
  readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((l) => l.includes('.resend-window-'));

for (const store of ['file', 'memory'] as const) {
  const what = store === 'file' ? 'in an unlinked file in the buffer folder, not in the process; nothing is left there' : 'in memory with --tcp-resend-window-store memory: no file';
  t.test(`the window is kept ${what}`, async (t) => {
    const dir = t.testdir({ state: {} });
    const file = join(dir, 'audit.log');
    writeFileSync(file, Array.from({ length: 2000 }, (_, i) => line(i)).join('\n') + '\n');
    const drain = await DyingDrain.start(0, 0);
    t.teardown(() => drain.close());
    const spill = join(dir, 'spill');
    // Following (no --once): the process is still running when the lines have arrived.
    const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), '--buffer-dir', spill, '--tcp-resend-window', '2MiB', ...(store === 'memory' ? ['--tcp-resend-window-store', 'memory'] : [])]);
    await drain.received(2000);
    const windows = windowFiles(run.child.pid!);
    if (store === 'file') {
      t.equal(windows.length, 1, 'one window file open');
      t.match(windows[0], new RegExp(`^${spill}/\\.resend-window-\\d+-[0-9a-f]+ \\(deleted\\)$`), 'in the buffer folder, already unlinked');
    } else t.same(windows, [], 'no window file');
    t.notOk(readdirSync(spill).some((n) => n.includes('resend')), 'not in the folder\'s listing');
    run.child.kill('SIGTERM');
    t.equal(await run.exited, 0);
    t.notOk(readdirSync(spill).some((n) => n.includes('resend')), 'nothing left behind');
  });
}
