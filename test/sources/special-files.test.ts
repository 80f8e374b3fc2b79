import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, openSync, closeSync, constants, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { get, opsPort, parseMetrics } from '../helpers/ops.js';
import { runAuditfwd, usageError } from '../helpers/proc.js';

const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

t.test('a FIFO given as --file is refused at start with one line, writer or not', async (t) => {
  const dir = t.testdir({ state: {} });
  const fifo = join(dir, 'audit.pipe');
  mkfifo(fifo);
  const args = ['--to', '-', '--file', fifo, '--state-dir', join(dir, 'state')];
  await usageError(t, args, /--file: .*audit\.pipe is a FIFO, not a regular file .*pipe a FIFO to stdin/);
  // A writer holding it open: the old run read it positionally (ESPIPE) and died.
  const writer = openSync(fifo, constants.O_RDWR);
  t.teardown(() => closeSync(writer));
  await usageError(t, args, /is a FIFO, not a regular file/);
});

t.test('a followed file replaced by a directory, then a FIFO: logged once each, counted, the other file still forwarded', async (t) => {
  const dir = t.testdir({ a: { 'audit.log': '{"a":1}\n' }, b: { 'audit.log': '{"b":1}\n' }, state: {} });
  const a = join(dir, 'a', 'audit.log');
  const b = join(dir, 'b', 'audit.log');
  const drain = await TestDrain.start({ framing: 'lf' });
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--to', drain.address, '--framing', 'lf', '--file', a, '--file', b, '--state-dir', join(dir, 'state'), '--poll-interval', '50ms', '--rotate-wait', '0s', '--metrics-listen', '127.0.0.1:0']);
  await drain.waitFor(2);

  rmSync(a);
  mkdirSync(a);
  await run.waitForLog(/audit\.log is a directory, not a regular file: not read/);
  appendFileSync(b, '{"b":2}\n');
  await drain.waitFor(3);

  rmdirSync(a);
  mkfifo(a);
  await run.waitForLog(/audit\.log is a FIFO, not a regular file: not read/);
  appendFileSync(b, '{"b":3}\n');
  await drain.waitFor(4);

  // The path is still watched: a regular file there again is followed.
  rmSync(a);
  writeFileSync(a, '{"a":2}\n');
  await drain.waitFor(5);
  const metrics = parseMetrics((await get(`http://127.0.0.1:${opsPort(run.stderr())}/metrics`)).text);
  t.equal(metrics.get(`auditfwd_source_errors_total{file="${a}"}`), 2, 'one error counted per problem');
  t.equal(run.child.exitCode, null, 'still running');
  const body = drain.messages.map((m) => m.toString());
  t.ok(['"a":1', '"b":1', '"b":2', '"b":3', '"a":2'].every((s) => body.some((m) => m.includes(s))), 'every line forwarded');
  t.equal(run.stderr().split('\n').filter((l) => /not a regular file/.test(l)).length, 2, 'each problem logged once, not at every poll');
  t.notMatch(run.stderr(), /\s+at .*:\d+:\d+/, 'no stack trace');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
});
