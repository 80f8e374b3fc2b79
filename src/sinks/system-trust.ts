import { readFileSync } from 'node:fs';
import { nodeTls } from './lazy-tls.js';

/**
 * Where Linux distributions keep the system trust store as one PEM bundle. Node 20 ships its own copy
 * of Mozilla's roots and ignores these; an operator who added a corporate CA to the system store
 * expects it to count, so the system bundle is preferred.
 */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine
  '/etc/pki/tls/certs/ca-bundle.crt', // RHEL, Fedora
  '/etc/ssl/ca-bundle.pem', // SUSE
  '/etc/ssl/cert.pem', // Alpine, BSDs
];

/** SSL_CERT_FILE as the operator set it, read before emptyNodeDefaultStore() points it elsewhere. */
const operatorCertFile = process.env.SSL_CERT_FILE;

/** The CAs a drain without --ca trusts: $SSL_CERT_FILE, else the distribution's bundle, else Node's roots. */
export function systemTrust(): { ca: Buffer | string[]; trust: string } {
  for (const path of operatorCertFile ? [operatorCertFile, ...SYSTEM_BUNDLES] : SYSTEM_BUNDLES) {
    try {
      const pem = readFileSync(path);
      if (pem.includes('-----BEGIN CERTIFICATE-----')) return { ca: pem, trust: path };
    } catch {
      // not this distribution's place
    }
  }
  return { ca: [...nodeTls().rootCertificates], trust: 'Node.js bundled Mozilla roots' };
}

/**
 * Node builds one default trust store per process, the first time any TLS context is made: also for
 * a context given its own CAs, only to check that the context does not share it. auditfwd gives every
 * context its CAs (--ca, else systemTrust()), so that store is never trusted. With --use-openssl-ca
 * (how bin/auditfwd runs node) it is OpenSSL's default paths, read from SSL_CERT_FILE and
 * SSL_CERT_DIR when the store is built: it parsed the whole system bundle, about 1 MB of RSS, a
 * second time. Pointed at /dev/null before any context exists, it is built empty. Call it first.
 */
export function emptyNodeDefaultStore(): void {
  process.env.SSL_CERT_FILE = '/dev/null';
  process.env.SSL_CERT_DIR = '/dev/null';
}
