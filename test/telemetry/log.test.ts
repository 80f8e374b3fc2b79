import t from 'tap';
import { RateLimitedLog, type Logger } from '../../src/telemetry/log.js';
import { runAuditfwd } from '../helpers/proc.js';

function recorder() {
  const calls: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => calls.push({ obj, msg }) } as unknown as Logger;
  return { log, calls };
}

t.test('a repeating error is logged once per interval, with how often it repeated', async (t) => {
  const { log, calls } = recorder();
  let now = 1_000_000;
  const limited = new RateLimitedLog(log, 60_000, () => now);
  // A drain down for 3 hours, retried every 100 ms: 108,000 attempts.
  for (let i = 0; i < 108_000; i++, now += 100) limited.warn('connect', { attempt: i + 1 }, 'cannot connect to drain; retrying');
  t.equal(calls.length, 180, 'one line a minute');
  t.same(calls[0], { obj: { attempt: 1 }, msg: 'cannot connect to drain; retrying' }, 'the first occurrence at once, as it is');
  t.same(calls[1].obj, { attempt: 601, repeated: 599 }, 'then a summary of the minute');
  t.ok(calls.slice(1).every((c) => c.obj.repeated === 599));
});

t.test('keys are independent; clear() logs the next occurrence at once', async (t) => {
  const { log, calls } = recorder();
  let now = 0;
  const limited = new RateLimitedLog(log, 60_000, () => now);
  limited.warn('connect', {}, 'a');
  limited.warn('lost', {}, 'b');
  limited.warn('connect', {}, 'a');
  t.same(calls.map((c) => c.msg), ['a', 'b']);
  now += 1000;
  limited.clear('connect'); // it connected: the next failure is news
  limited.warn('connect', {}, 'a');
  t.same(calls.map((c) => c.msg), ['a', 'b', 'a']);
  t.same(calls[2].obj, {}, 'no stale count after clear');
});

t.test('--log-format pretty: one readable line per record; json stays JSON', async (t) => {
  const run = runAuditfwd(t, ['--to', '-', '--log-format', 'pretty'], { stdin: 'x\n' });
  t.equal(await run.exited, 0);
  const lines = run.stderr().trimEnd().split('\n');
  t.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  auditfwd started to=- sources=\["stdin"\]$/);
  t.notMatch(run.stderr(), /\x1b\[/, 'no colours when stderr is not a terminal');
  const json = runAuditfwd(t, ['--to', '-'], { stdin: 'x\n' });
  t.equal(await json.exited, 0);
  t.ok(json.stderr().trimEnd().split('\n').every((l) => JSON.parse(l).name === 'auditfwd'), 'auto on a pipe: JSON');
});
