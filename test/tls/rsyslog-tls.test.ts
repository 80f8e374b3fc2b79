import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { untilTrue } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

const missing = rsyslogMissing({ imtcp: 'rsyslog', lmnsd_gtls: 'rsyslog-gnutls' }) ?? (hasOpenssl() ? undefined : 'openssl not found (Debian package openssl)');

/** rsyslog signals nothing when it has written a line: its output file is watched until it has `n` lines. */
async function waitForLines(r: Rsyslog, n: number, ms = 20_000): Promise<string[]> {
  await untilTrue(() => r.lines().length >= n, () => 'too few lines', ms).catch(() => {}); // the caller reports the shortfall
  return r.lines();
}

if (missing) {
  t.plan(0, `SKIPPED: rsyslog TLS interoperability not tested: ${missing}`);
} else {
  const pki = new TestPki(t.testdir({}));
  const ca = pki.ca('ca');
  const server = pki.issue(ca, 'server');
  const client = pki.issue(ca, 'client', { usage: 'client', passphrase: 'rsyslog-test-pass' });
  const passFile = join(pki.dir, 'pass');
  writeFileSync(passFile, 'rsyslog-test-pass', { mode: 0o600 });
  // x509/certvalid: rsyslog requires a client certificate signed by its CA (mutual TLS).
  const gtlsInput = {
    global: `defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${ca.cert}" defaultNetstreamDriverCertFile="${server.cert}" defaultNetstreamDriverKeyFile="${server.key}"`,
    modules: ['imtcp'],
    inputs: (port: number) =>
      `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")`,
  };

  t.test('real rsyslog (imtcp, gtls, mutual TLS): every message received and parsed', async (t) => {
    const r = await Rsyslog.start(t, {
      ...gtlsInput,
      // Fields rsyslog parsed out of each RFC 5424 message, so a framing or header error shows.
      template: '%protocol-version%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n',
    });
    const n = 2000;
    const lines = numberedAuditLines(n);
    const run = runAuditfwd(
      t,
      ['--to', `tls://localhost:${r.port}`, '--ca', ca.cert, '--cert', client.cert, '--key', client.key, '--key-passphrase-file', passFile,
        '--hostname', 'master-0', '--app-name', 'kube-apiserver', '--reconnect-max-delay', '300ms'],
      { stdin: lines.join('\n') + '\n' },
    );
    t.equal(await run.exited, 0, 'auditfwd delivered everything and exited', { stderr: run.stderr() });
    const got = await waitForLines(r, n);
    t.equal(got.length, n, 'rsyslog wrote every message', { rsyslog: r.log() });
    const bad = got.filter((l, i) => {
      const [version, host, app, procid, msgid, sd, ...msg] = l.split('|');
      return !(version === '1' && host === 'master-0' && app === 'kube-apiserver' && procid === '-' && msgid === '-' && sd === '-' && msg.join('|') === lines[i]);
    });
    t.same(bad.slice(0, 3), [], 'every line parsed by rsyslog as RFC 5424 with our fields and the exact message, in order');
    t.same(
      got.map((l) => seqOf(l.slice(l.indexOf('{')))),
      lines.map((_, i) => i),
      'no message lost, repeated or reordered',
    );
  });

  t.test('real rsyslog refuses auditfwd without a client certificate: nothing delivered', async (t) => {
    const r = await Rsyslog.start(t, {
      ...gtlsInput,
    });
    const run = runAuditfwd(t, ['--to', `tls://localhost:${r.port}`, '--ca', ca.cert, '--reconnect-max-delay', '300ms', '--shutdown-timeout', '500ms'], { stdin: 'pipe' });
    run.child.stdin!.write('secret\n');
    await run.waitForLog(/cannot connect to drain/);
    t.equal(run.child.exitCode, null, 'still retrying');
    // Stopping shows the message was never handed on: it is still in the buffer at the deadline.
    run.child.kill('SIGTERM');
    await run.waitForLog(/shutdown deadline reached/);
    await run.exited;
    t.match(run.stderr(), /"unsentBytes":[1-9]/, 'the message was still waiting in the buffer');
    t.same(r.lines(), [], 'rsyslog wrote nothing');
  });
}
