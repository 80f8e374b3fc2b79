import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { TlsTestDrain } from '../helpers/tls-drain.js';

if (!hasOpenssl()) t.skip('openssl is missing (Debian package openssl): TLS tests need it to make certificates');

async function drain(t: Tap.Test, opts: Parameters<typeof TlsTestDrain.start>[0]) {
  const d = await TlsTestDrain.start(opts);
  t.teardown(async () => { console.error('closing'); await d.close(); console.error('closed'); });
  return d;
}

const pkiDir = t.testdir({});
const pki = new TestPki(pkiDir);
const ca = pki.ca('ca');
const otherCa = pki.ca('other-ca');
const server = pki.issue(ca, 'server');

t.test('verified server: delivered over TLS 1.2+', async (t) => {
  const d = await drain(t, { cert: server.certPem, key: server.keyPem });
  const run = runAuditfwd(t, ['--to', `tls://127.0.0.1:${d.port}`, '--ca', ca.cert], { stdin: 'one\ntwo\n' });
  t.equal(await run.exited, 0, run.stderr());
  await d.waitFor(2);
  t.same(d.messages.map((m) => parseRfc5424(m).msg.toString()), ['one', 'two']);
});
