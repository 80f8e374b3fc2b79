import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A throw-away CA and server certificate for the TLS contender. */
export function tlsMaterial(dir) {
  const d = join(dir, 'tls');
  mkdirSync(d, { recursive: true });
  const o = (...args) => execFileSync('openssl', args, { cwd: d, stdio: 'ignore' });
  o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bench CA');
  o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(d, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext');
  return { caFile: join(d, 'ca.pem'), key: readFileSync(join(d, 'server.key')), cert: readFileSync(join(d, 'server.pem')) };
}
