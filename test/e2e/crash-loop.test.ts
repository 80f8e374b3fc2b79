import t from 'tap';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { savedOffset } from '../helpers/state.js';
import { runAuditfwd, type Run } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

/**
 * A crash-looping forwarder must make progress: after kill -9, only about one batch is sent again
 * (the one partly in the socket's buffer when the process died; positions reach positions.slots
 * within the tick that commits them), whatever --checkpoint-interval says (default flags here: 1 s).
 * The duplicates are printed, not bounded at 1%: the batch in the socket is up to 512 KiB (about
 * 400 of these lines), which is more than 1% of (a) in some runs (docs/design.md has the figures).
 */

const lines = numberedAuditLines(45_000);
const text = (from: number, to: number) => lines.slice(from, to).join('\n') + '\n';

function tally(drain: TestDrain, n: number) {
  const got = drain.messages.map((m) => seqOf(parseRfc5424(m).msg.toString()));
  const seen = new Set(got);
  let lost = 0;
  for (let i = 0; i < n; i++) if (!seen.has(i)) lost++;
  return { lost, duplicates: got.length - seen.size };
}

/** Kills after `ms` (from the start of the process): a crash at a random point of its work. */
async function killAfter(run: Run, ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  run.child.kill('SIGKILL');
  await run.exited;
}

async function finish(t: Tap.Test, drain: TestDrain, args: string[], n: number): Promise<Run> {
  const last = runAuditfwd(t, args);
  // Counted as they come (parsing every message at each arrival would starve the drain).
  const seen = new Set<number>();
  let parsed = 0;
  const all = await Promise.race([
    (async () => {
      for (;;) {
        for (; parsed < drain.messages.length; parsed++) {
          const s = seqOf(parseRfc5424(drain.messages[parsed]).msg.toString());
          if (s >= 0 && s < n) seen.add(s);
        }
        if (seen.size === n) return true;
        await drain.waitFor(drain.messages.length + 1);
      }
    })(),
    new Promise<boolean>((r) => setTimeout(() => r(false), 60_000).unref()),
  ]);
  // Signalled only once it runs: a SIGTERM during node's startup ends it before its handler exists.
  await last.waitForLog(/following (rotated )?file/);
  last.child.kill('SIGTERM');
  const code = await last.exited;
  t.equal(code, 0, 'SIGTERM: exit 0', { stderr: code === 0 ? undefined : last.stderr().slice(-3000) });
  t.ok(all, 'every line arrived', { stderr: all ? undefined : last.stderr().slice(-3000) });
  return last;
}

t.test('positions reach the state file within ~50 ms of hand-on whatever --checkpoint-interval: kill -9 repeats nothing once idle', async (t) => {
  const dir = t.testdir({ app: {}, state: {} });
  const file = join(dir, 'app', 'audit.log');
  const state = join(dir, 'state');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  writeFileSync(file, '');
  const args = ['--file', file, '--to', drain.address, '--state-dir', state, '--checkpoint-interval', '10m'];
  const run = runAuditfwd(t, args);
  await run.waitForLog(/connected to drain/);
  await run.waitForLog(/following file/);
  for (let k = 0; k < 2000; k += 200) appendFileSync(file, text(k, k + 200));
  await drain.waitFor(2000);
  const size = Buffer.byteLength(text(0, 2000));
  // Woken by the state folder's renames; the deadline only bounds a failure (a 10 min interval would miss it).
  const saved = await Promise.race([savedOffset(state, size), new Promise<number>((r) => setTimeout(() => r(-1), 5000).unref())]);
  t.equal(saved, size, 'the state file covers every line handed on, long before the checkpoint interval');
  run.child.kill('SIGKILL');
  await run.exited;
  appendFileSync(file, text(2000, 3000));
  const after = await finish(t, drain, args, 3000);
  const r = tally(drain, 3000);
  t.same(r, { lost: 0, duplicates: 0 }, 'nothing lost, nothing repeated');
  t.match(after.stderr(), /the last run did not stop cleanly/, 'the run after the kill knows it');
  t.notMatch(run.stderr(), /the last run did not stop cleanly/, 'the first run does not');
  // After a clean stop (finish ends with SIGTERM), the next run is not told of a crash.
  const clean = await finish(t, drain, args, 3000);
  t.notMatch(clean.stderr(), /the last run did not stop cleanly/, 'the run after SIGTERM does not');
});


// Fixed, not random, so that a failure can be run again as it was.
const DELAYS = [200, 450, 700, 300, 600, 500];

t.test('six kill -9 restarts 0.2–0.7 s apart, 5,000 lines before each: nothing lost, fewer repeats than lines', async (t) => {
  const dir = t.testdir({ app: {}, state: {} });
  const file = join(dir, 'app', 'audit.log');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  writeFileSync(file, '');
  const args = ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state')];
  for (let i = 0; i < DELAYS.length; i++) {
    appendFileSync(file, text(i * 5000, (i + 1) * 5000));
    await killAfter(runAuditfwd(t, args), DELAYS[i]);
  }
  const n = DELAYS.length * 5000;
  await finish(t, drain, args, n);
  const r = tally(drain, n);
  t.equal(r.lost, 0, 'nothing lost');
  // Each run makes progress: fewer repeats than lines (on a forwarder that saved only at its 1 s
  // interval, every run killed before it repeated all it had sent: several times the lines).
  t.ok(r.duplicates < n, `${r.duplicates} duplicates of ${n} lines`);
  t.comment(`crash loop: ${r.duplicates} duplicates for ${n} lines after ${DELAYS.length} kill -9`);
});

t.test('lumberjack rotations with a kill -9 soon after each start: nothing lost (repeats measured)', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  writeFileSync(file, text(0, 5000));
  const args = ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state')];
  const run = runAuditfwd(t, args);
  await drain.waitFor(5000);
  // Each round: 10,000 lines, half before lumberjack's rename, half into the new file, then a kill -9.
  for (let i = 0; i < 4; i++) {
    const base = 5000 + i * 10_000;
    appendFileSync(file, text(base, base + 5000));
    renameSync(file, join(dir, 'kube-apiserver', `audit-2026-11-30T10-0${i}-00.000.log`));
    writeFileSync(file, text(base + 5000, base + 10_000));
    if (i === 0) await killAfter(run, 0);
    else await killAfter(runAuditfwd(t, args), DELAYS[i]);
  }
  const n = 45_000;
  await finish(t, drain, args, n);
  const r = tally(drain, n);
  t.equal(r.lost, 0, 'nothing lost');
  // Repeats here come from the batch in the socket at each kill and, in runs where lines read while
  // the drain connects were spilled, from spilled lines neither fsynced nor sent: the spill still
  // holds them and their file is read again. Measured, not bounded.
  t.comment(`lumberjack + kill -9: ${r.duplicates} duplicates for ${n} lines`);
});
