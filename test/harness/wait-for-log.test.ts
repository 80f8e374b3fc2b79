import t from 'tap';
import { runAuditfwd } from '../helpers/proc.js';

// A test that waits for a log line auditfwd never writes used to hang until tap killed the file,
// with nothing said of why (CI, spill-full-disk under Node 24). It now fails with auditfwd's stderr.

t.test('waitForLog: resolves on the line, rejects with the log when the process ends first', async (t) => {
  const bad = runAuditfwd(t, ['--to', '-', '--no-such-flag']);
  await t.rejects(bad.waitForLog(/auditfwd started/), /auditfwd (exited \(2\)|had ended) before logging \/auditfwd started\/; its stderr ends:\n.*no-such-flag/s);
  t.equal(await bad.exited, 2);
  await t.rejects(bad.waitForLog(/anything else/), /had ended/, 'asked after the end: at once');
});

t.test('waitForLog: rejects after its time with the log so far', async (t) => {
  const run = runAuditfwd(t, ['--to', '-'], { stdin: 'pipe' });
  await run.waitForLog(/auditfwd started/);
  const before = Date.now();
  await t.rejects(run.waitForLog(/a line never written/, 300), /ran 300 ms before logging .*; its stderr ends:\n.*auditfwd started/s);
  t.ok(Date.now() - before >= 290, 'not before its time');
  run.child.stdin!.end();
  t.equal(await run.exited, 0);
});
