import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get } from 'node:http';
import { join } from 'node:path';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { freePort } from '../helpers/net.js';
import { runAuditfwd } from '../helpers/proc.js';
import { FlakyDrain, firstSeen, range, received } from '../helpers/spill.js';

/** An 8 MiB tmpfs for the spill (removed in teardown), or why there is none: mounting is not permitted. */
function smallDisk(t: Tap.Test): { dir?: string; why?: string } {
  const dir = mkdtempSync(join(tmpdir(), 'auditfwd-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { why: String((err as { stderr?: Buffer }).stderr ?? err).trim() || 'mount failed' };
  }
  t.teardown(() => {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir };
}

const metric = (port: number, name: string) =>
  new Promise<number>((resolve, reject) => {
    get(`http://127.0.0.1:${port}/metrics`, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1])));
    }).on('error', reject);
  });

t.test('a full disk under the spill never wedges delivery: it flows again within 1 s of the drain, nothing lost', async (t) => {
  const dir = t.testdir();
  const { dir: disk, why } = smallDisk(t);
  if (!disk) {
    t.comment(`SKIPPED: cannot mount an 8 MiB tmpfs for the spill (${why}); run as root to test a full disk`);
    t.skip(`cannot mount a tmpfs: ${why}`);
    return;
  }
  // ~30 MB of audit lines, already in the followed file while the drain is down.
  const N = 23_000;
  const MORE = 2_000;
  const ALL = numberedAuditLines(N + MORE);
  const LINES = ALL.slice(0, N);
  const file = join(dir, 'audit.log');
  writeFileSync(file, LINES.join('\n') + '\n');
  const drain = await FlakyDrain.reserve(t);
  const port = await freePort();
  const run = runAuditfwd(t, [
    '--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), '--buffer-dir', join(disk, 'spill'),
    '--spill-fsync-interval', '100ms', '--reconnect-max-delay', '200ms', '--metrics-listen', `127.0.0.1:${port}`,
  ]);
  await run.waitForLog(/cannot write to the spill/);
  t.match(run.stderr(), /"code":"ENOSPC"/, 'the reason is logged');
  t.equal(await metric(port, 'auditfwd_spill_unwritable'), 1, 'metric: the spill cannot be written');
  await run.waitForLog(/spill full: reading waits/);
  t.equal((run.stderr().match(/cannot write to the spill/g) ?? []).length, 1, 'said once');

  const before = drain.messages.length;
  const upAt = Date.now();
  await drain.up();
  await drain.waitFor(before + 1);
  const after = Date.now() - upAt;
  t.ok(after < 1000, `delivery continues ${after} ms after the drain is back`);
  await drain.waitFor(N);
  const { lines, gaps } = received(drain.messages);
  const { seqs, outOfOrder } = firstSeen(lines);
  t.same(seqs, range(0, N), 'every line arrives, in order: 0 lost');
  t.equal(outOfOrder, 0);
  t.equal(gaps.length, 0, 'nothing dropped');
  // The resend window (36 MiB with auto here) outgrows its file on the 8 MiB disk: it moves to memory, said once.
  const windowWarnings = run.stderr().split('\n').filter((l) => l.includes('cannot keep the --tcp-resend-window in a file'));
  t.equal(windowWarnings.length, 1, 'the window could not have its file: said once');
  t.match(windowWarnings[0], /"reason":"ENOSPC"/, 'with the reason');
  // While it catches up the disk may fill again (each time said again once it had recovered); with
  // everything sent, nothing more is written, and the last word is that it recovered.
  await run.waitForLog(/the spill can be written again(?![^]*cannot write to the spill)/);
  t.equal(await metric(port, 'auditfwd_spill_unwritable'), 0, 'the spill recovered by itself');

  // With room again, the next outage spills as before.
  await drain.down();
  const spills = (run.stderr().match(/"spilling to disk"/g) ?? []).length;
  appendFileSync(file, ALL.slice(N).join('\n') + '\n');
  await run.waitForLog(new RegExp(`("msg":"spilling to disk"[^]*){${spills + 1}}`));
  await drain.up();
  // The drain closed the connection: what it carried is sent again first (--tcp-resend-window).
  await drain.waitForSeqs(N + MORE);
  const again = firstSeen(received(drain.messages).lines);
  t.same(again.seqs, range(0, N + MORE), 'and every line of the second outage arrives too');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, run.stderr().slice(-2000));
});
