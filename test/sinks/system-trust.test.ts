import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';

// The operator's SSL_CERT_FILE, set before the module is loaded (as it is before auditfwd starts).
const dir = t.testdir({});
const bundle = join(dir, 'operator-bundle.pem');
writeFileSync(bundle, rootCertificates[0] + '\n');
const saved = { file: process.env.SSL_CERT_FILE, dir: process.env.SSL_CERT_DIR };
process.env.SSL_CERT_FILE = bundle;
t.teardown(() => {
  for (const [name, value] of [['SSL_CERT_FILE', saved.file], ['SSL_CERT_DIR', saved.dir]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});
const { emptyNodeDefaultStore, systemTrust } = await import('../../src/sinks/system-trust.js');

t.test("the system store is the operator's SSL_CERT_FILE, also once OpenSSL's default paths point at nothing", async (t) => {
  t.equal(systemTrust().trust, bundle, 'SSL_CERT_FILE first');
  emptyNodeDefaultStore();
  t.equal(process.env.SSL_CERT_FILE, '/dev/null');
  t.equal(process.env.SSL_CERT_DIR, '/dev/null');
  const { ca, trust } = systemTrust();
  t.equal(trust, bundle, 'still the file the operator named');
  t.ok(Buffer.isBuffer(ca) && ca.toString().includes(rootCertificates[0].trim()), 'and its certificates');
});
