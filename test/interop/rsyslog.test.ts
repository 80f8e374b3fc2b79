import t from 'tap';
import { auditfwdSupports, compareFields, expectedMessages, interopLines, makeCertificates, opensslMissing, waitForMessages, type ReceivedFields } from '../helpers/interop.js';
import { startRsyslogFields } from '../helpers/interop-rsyslog.js';
import { runAuditfwd } from '../helpers/proc.js';
import { rsyslogMissing } from '../helpers/rsyslog.js';

// Header fields that differ from every default, so a server that ignored one would show.
const HEADER_ARGS = ['--hostname', 'interop-node-7.cluster.example', '--app-name', 'kube-apiserver', '--facility', 'local3', '--severity', 'notice'];
const input = interopLines().join('\n') + '\n';

/**
 * Sends the interop lines with auditfwd to `to` and compares, field by field, what the server
 * parsed with what auditfwd frames for the same input on `--to -`.
 */
async function sendAndCompare(t: Tap.Test, to: string, extraArgs: string[], read: () => ReceivedFields[], serverLog: () => string) {
  const want = await expectedMessages(t, HEADER_ARGS, input);
  t.ok(want.some((m) => m.msg.length > 120_000 && !m.msg.includes('[truncated by auditfwd')), 'the input has long lines that fit');
  t.ok(want.some((m) => m.msg.includes('[truncated by auditfwd: ')), 'and one cut at the default --max-message-bytes');
  const from = Date.now();
  const run = runAuditfwd(t, ['--to', to, ...HEADER_ARGS, ...extraArgs], { stdin: input });
  t.equal(await run.exited, 0, `auditfwd exits 0 after delivering: ${run.stderr().slice(-500)}`);
  const to_ = Date.now();
  const got = await waitForMessages(read, want.length, 20_000, serverLog);
  compareFields(t, got, want, { timestampWindow: { from, to: to_ } });
}

t.test('rsyslog imtcp, octet-counted framing (RFC 6587)', async (t) => {
  const missing = rsyslogMissing({ imtcp: 'rsyslog' });
  if (missing) return t.skip(missing);
  const { rs, read } = await startRsyslogFields(t, (port) => `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`, ['imtcp']);
  await sendAndCompare(t, `127.0.0.1:${rs.port}`, [], read, () => rs.log());
});

t.test('rsyslog imtcp, LF framing (--framing lf)', async (t) => {
  const missing = rsyslogMissing({ imtcp: 'rsyslog' });
  if (missing) return t.skip(missing);
  const { rs, read } = await startRsyslogFields(t, (port) => `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`, ['imtcp']);
  await sendAndCompare(t, `tcp://127.0.0.1:${rs.port}`, ['--framing', 'lf'], read, () => rs.log());
});

t.test('rsyslog imtcp over TLS (gtls, RFC 5425)', async (t) => {
  if (!auditfwdSupports(/--ca\b/)) return t.skip('SKIPPED LOUDLY: this auditfwd has no TLS yet (--help does not mention --ca); runs once the tls branch is merged');
  const missing = rsyslogMissing({ imtcp: 'rsyslog', lmnsd_gtls: 'rsyslog-gnutls' }) ?? opensslMissing();
  if (missing) return t.skip(missing);
  const certs = makeCertificates(t.testdir());
  const inputs = (port: number) =>
    [
      `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`,
      `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`,
    ].join('\n');
  const global = `defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${certs.ca}" defaultNetstreamDriverCertFile="${certs.cert}" defaultNetstreamDriverKeyFile="${certs.key}"`;
  const { rs, read } = await startRsyslogFields(t, inputs, [], global);
  await sendAndCompare(t, `tls://127.0.0.1:${rs.port}`, ['--ca', certs.ca], read, () => rs.log());
});

t.test('rsyslog imrelp', async (t) => {
  if (!auditfwdSupports(/relp/i)) return t.skip('SKIPPED LOUDLY: this auditfwd has no RELP yet (--help does not mention relp); runs once the relp branch is merged');
  const missing = rsyslogMissing({ imrelp: 'rsyslog-relp' });
  if (missing) return t.skip(missing);
  const inputs = (port: number) => `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")`;
  const { rs, read } = await startRsyslogFields(t, inputs, ['imrelp']);
  await sendAndCompare(t, `relp://127.0.0.1:${rs.port}`, [], read, () => rs.log());
});
