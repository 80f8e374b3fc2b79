import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAuditfwd, usageError } from '../helpers/proc.js';

t.test('a duration needs its unit; a negative one is refused by name, not read as flags', async (t) => {
  const to = ['--to', '-'];
  await usageError(t, [...to, '--shutdown-timeout', '5'], /^auditfwd: --shutdown-timeout: "5" needs a unit: 5ms, 5s or 5m$/);
  await usageError(t, [...to, '--exit-timeout', '-1s'], /^auditfwd: --exit-timeout: "-1s" is negative: durations are 0 or more/);
  await usageError(t, [...to, '--memory-max-bytes', '-5'], /^auditfwd: --memory-max-bytes: "-5" is negative/);
  await usageError(t, [...to, '--poll-interval', '5ms'], /--poll-interval: 5ms is below the minimum of 10 ms/);
  await usageError(t, [...to, '--memory-max-bytes', '1KiB'], /--memory-max-bytes: 1KiB is out of range \(65536-/);
  const dir = t.testdir({ 'c.yml': 'to: "-"\nshutdown_timeout: 5\n' });
  await usageError(t, ['--config', join(dir, 'c.yml')], /c\.yml:2: shutdown_timeout: "5" needs a unit/);
  // 0 needs no unit, and a value with its unit is fine.
  const ok = runAuditfwd(t, [...to, '--shutdown-timeout', '0', '--exit-timeout', '1.5s', '--check-config']);
  t.equal(await ok.exited, 0, ok.stderr());
});

t.test('--once again sends only what was added; --ignore-positions sends everything again', async (t) => {
  const dir = t.testdir({});
  const log = join(dir, 'audit.log');
  writeFileSync(log, 'one\ntwo\n');
  const args = ['--file', log, '--once', '--to', '-', '--framing', 'lf', '--state-dir', join(dir, 'state'), '--hostname', 'h', '--app-name', 'a'];
  const msgs = (out: Buffer) => out.toString().split('\n').filter(Boolean).map((l) => l.split(' ').at(-1));

  const first = runAuditfwd(t, args);
  t.equal(await first.exited, 0, first.stderr());
  t.strictSame(msgs(first.stdout()), ['one', 'two']);

  const again = runAuditfwd(t, args);
  t.equal(await again.exited, 0);
  t.strictSame(msgs(again.stdout()), [], 'positions saved: nothing new, nothing sent');

  writeFileSync(log, 'one\ntwo\nthree\n');
  const more = runAuditfwd(t, args);
  t.equal(await more.exited, 0);
  t.strictSame(msgs(more.stdout()), ['three']);

  const backfill = runAuditfwd(t, [...args, '--ignore-positions']);
  t.equal(await backfill.exited, 0, backfill.stderr());
  t.strictSame(msgs(backfill.stdout()), ['one', 'two', 'three'], 'the whole file again');
  t.match(backfill.stderr(), /--ignore-positions: saved read positions not used/);

  const after = runAuditfwd(t, args);
  t.equal(await after.exited, 0);
  t.strictSame(msgs(after.stdout()), [], 'the positions were saved anew');
});
