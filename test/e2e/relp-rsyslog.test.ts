import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { numberedAuditLines } from '../helpers/shared-data.js';

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
