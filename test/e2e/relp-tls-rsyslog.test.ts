import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { numberedAuditLines } from '../helpers/fixtures.js';

const missing = rsyslogMissing({ imrelp: 'rsyslog-relp' }) ?? (hasOpenssl() ? undefined : 'openssl not found (Debian package openssl)');
if (missing) t.skip(`RELP over TLS with rsyslog: ${missing}`);

t.test('relp+tls: every audit line reaches rsyslog imrelp over mutual TLS', { skip: missing }, async (t) => {
  const dir = t.testdir({ pki: {}, app: {}, state: {} });
  const pki = new TestPki(join(dir, 'pki'));
  const ca = pki.ca('ca');
  const server = pki.issue(ca, 'server');
  const client = pki.issue(ca, 'client', { usage: 'client' });
  // librelp asks for a client certificate; certvalid accepts any the CA signed.
  const rs = await Rsyslog.start(t, {
    modules: ['imrelp'],
    inputs: (port) =>
      `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k" tls="on" ` +
      `tls.cacert="${ca.cert}" tls.mycert="${server.cert}" tls.myprivkey="${server.key}" tls.authMode="certvalid")`,
  });
  const lines = numberedAuditLines(2000);
  writeFileSync(join(dir, 'app', 'audit.log'), lines.join('\n') + '\n');
  const run = runAuditfwd(t, [
    '--file', join(dir, 'app', 'audit.log'), '--to', `relp+tls://localhost:${rs.port}`, '--once', '--state-dir', join(dir, 'state'),
    '--ca', ca.cert, '--cert', client.cert, '--key', client.key,
  ]);
  t.equal(await run.exited, 0, 'auditfwd delivered everything and exited 0');
  t.same(rs.lines(), lines, 'every line, in order, once');
});
