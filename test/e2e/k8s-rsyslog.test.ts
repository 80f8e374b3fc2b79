import t from 'tap';
import { join } from 'node:path';
import { untilTrue } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { k8sAuditLines } from '../helpers/fixtures.js';
import { eventTime, expectedParams } from '../helpers/audit-expect.js';

/** rsyslog's own rendering of one structured-data element back into params, to compare with the JSON. */
function sdParams(sd: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const re = / ([^= \]]+)="((?:[^"\\]|\\.)*)"/g;
  for (let m; (m = re.exec(sd)); ) out.push([m[1], m[2].replace(/\\(.)/g, '$1')]);
  return out;
}

t.test('rsyslog (pmrfc5424) reads the k8s-audit header: time, MSGID, SD element, MSG', async (t) => {
  const missing = rsyslogMissing({ imtcp: 'rsyslog' });
  if (missing) return t.skip(missing);
  const base = JSON.parse(k8sAuditLines()[0]);
  const tricky = JSON.stringify({ ...base, auditID: 'tricky-rsyslog', user: { username: 'a"b\\c]d' }, stageTimestamp: '2026-11-23T12:00:00.5+02:00' });
  const lines = [...k8sAuditLines(), tricky];
  const rsyslog = await Rsyslog.start(t, {
    modules: ['imtcp'],
    inputs: (port) => `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`,
    template: '%timereported:::date-rfc3339%\\t%msgid%\\t%structured-data%\\t%msg%\\n',
  });
  const dir = t.testdir({ 'kube-apiserver': { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const run = runAuditfwd(t, [
    '--file', join(dir, 'kube-apiserver', 'audit.log'), '--state-dir', join(dir, 'state'), '--once',
    '--to', `127.0.0.1:${rsyslog.port}`, '--format', 'k8s-audit',
  ]);
  t.equal(await run.exited, 0, run.stderr());
  // rsyslogd has no "written" signal, so its output file is checked as it grows.
  await untilTrue(() => rsyslog.lines().length >= lines.length, () => `timed out waiting for ${lines.length} lines from rsyslog`, 15_000);
  const got = rsyslog.lines();
  t.equal(got.length, lines.length);
  got.forEach((row, i) => {
    const [time, msgId, sd, msg] = row.split('\t');
    const e = JSON.parse(lines[i]);
    t.equal(Date.parse(time), Date.parse(eventTime(e)), `rsyslog's TIMESTAMP is the event time (line ${i})`);
    t.equal(msgId, e.stage);
    t.ok(sd.startsWith('[k8s-audit@47450 '), 'one SD element');
    t.same(sdParams(sd), expectedParams(e), `SD params as rsyslog read them (line ${i})`);
    t.equal(msg, lines[i], 'MSG');
  });
});
