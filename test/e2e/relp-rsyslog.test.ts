import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { untilTrue } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';
import { countDelivered, outputBytes } from '../helpers/rsyslog-count.js';

const missing = rsyslogMissing({ imrelp: 'rsyslog-relp' });
if (missing) t.skip(`RELP interoperability with rsyslog: ${missing}`);

const relpInput = (port: number) =>
  `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")`;

t.test('every audit line reaches rsyslog imrelp, in order, and auditfwd exits 0', { skip: missing }, async (t) => {
  const rs = await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput });
  const lines = numberedAuditLines(2000);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `relp://127.0.0.1:${rs.port}`, '--once', '--state-dir', join(dir, 'state')]);
  t.equal(await run.exited, 0, run.stderr());
  // --once exits only after every message was acknowledged, and this rsyslog acknowledges only
  // what it has written: the file is complete now.
  t.same(rs.lines(), lines);
});

t.test('kill -9 of rsyslog mid-stream, again and again: every line arrives, repeats only from the window', { skip: missing }, async (t) => {
  const rs = await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput });
  const n = 40_000;
  const kills = 4;
  const window = 1024; // the default
  const lines = numberedAuditLines(n);
  const text = lines.join('\n') + '\n';
  const dir = t.testdir({ app: {}, state: {} });
  writeFileSync(join(dir, 'app', 'audit.log'), text);
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `relp://127.0.0.1:${rs.port}`, '--once', '--state-dir', join(dir, 'state'), '--reconnect-max-delay', '200ms']);
  for (let k = 1; k <= kills; k++) {
    // Kill when the output has reached k/(kills+1) of the input: mid-stream, with messages in flight.
    const target = (text.length * k) / (kills + 1);
    await untilTrue(() => outputBytes(rs.outFile) >= target, () => `output stuck below ${target} bytes before kill ${k}\n${run.stderr()}`, 30_000);
    await rs.kill9();
    await rs.launch();
  }
  t.equal(await run.exited, 0, 'auditfwd delivered everything and exited 0');
  const got = rs.lines();
  const { bad, torn, lost, repeats } = countDelivered(got, lines);
  t.same(bad, [], 'every line written by rsyslog is one of the input lines (after a torn write at most)');
  t.ok(torn <= kills, `torn writes (${torn}) at most one per kill`);
  t.equal(lost, 0, `zero lines lost of ${n}`);
  const summary = JSON.parse(run.stderr().split('\n').filter((l) => l.includes('all input delivered'))[0]);
  t.ok(repeats <= summary.resent, `repeats in the output (${repeats}) were all counted as resent (${summary.resent})`);
  t.ok(summary.resent > 0, 'the kills hit messages in flight (else this test proves nothing)');
  t.ok(summary.resent <= window * kills, `resent ${summary.resent} ≤ window ${window} × ${kills} crashes`);
  t.equal(summary.messages, n, 'every message acknowledged once');
  t.comment(`${n} lines, ${kills} kill -9 of rsyslog: lost ${lost}, repeated ${repeats}, torn ${torn}, resent ${summary.resent}`);
});

t.test('rsyslog stopped gracefully mid-stream (serverclose): reconnect, every line arrives', { skip: missing }, async (t) => {
  const rs = await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput });
  const n = 10_000;
  const lines = numberedAuditLines(n);
  const text = lines.join('\n') + '\n';
  const dir = t.testdir({ app: {}, state: {} });
  writeFileSync(join(dir, 'app', 'audit.log'), text);
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `relp://127.0.0.1:${rs.port}`, '--once', '--state-dir', join(dir, 'state'), '--reconnect-max-delay', '200ms']);
  await untilTrue(() => outputBytes(rs.outFile) >= text.length / 2, () => `output stuck below half\n${run.stderr()}`, 30_000);
  await rs.stop();
  await rs.launch();
  t.equal(await run.exited, 0, 'auditfwd delivered everything and exited 0');
  const seen = new Set(rs.lines().map(seqOf));
  t.equal(seen.size, n, `all ${n} lines arrived`);
  // rsyslog usually says serverclose first; when its socket closes before auditfwd read that, the
  // reason is the closed connection. Either way the end is logged with its reason.
  // Under load the next write can also meet the closed socket first (EPIPE).
  t.match(run.stderr(), /"reason":"(drain closed the session \(serverclose\)|connection closed|ECONNRESET|EPIPE)".*"msg":"RELP session ended"/, 'the session end is logged with its reason');
});

