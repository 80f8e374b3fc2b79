import t from 'tap';
import { parseFingerprint, resolveTls } from '../../src/config/tls-settings.js';
import type { Destination } from '../../src/sinks/destination.js';

const hex = 'ab'.repeat(32);
const tcp: Destination = { transport: 'tcp', host: 'drain', port: 6514 };
const tls: Destination = { transport: 'tls', host: 'drain', port: 6514 };

t.test('fingerprint spellings', async (t) => {
  const colons = hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
  for (const s of [`sha256:${colons}`, `SHA-256:${hex}`, colons, hex, ` ${hex} `]) t.equal(parseFingerprint(s), hex, s);
  t.throws(() => parseFingerprint(`sha1:${hex.slice(0, 40)}`), /"sha1" is not supported/);
  t.throws(() => parseFingerprint('sha256:abcd'), /is not a SHA-256 fingerprint/);
  t.throws(() => parseFingerprint(`sha256:${hex.slice(0, 62)}zz`), /is not a SHA-256 fingerprint/);
});

t.test('--tls upgrades tcp and relp; TLS flags need a TLS drain', async (t) => {
  t.equal(resolveTls({ tls: true }, tcp, 'octet-counting').to.transport, 'tls');
  t.equal(resolveTls({ tls: true }, { ...tcp, transport: 'relp' }, 'octet-counting').to.transport, 'relp+tls');
  t.equal(resolveTls({}, tcp, 'octet-counting').tls, undefined);
  t.throws(() => resolveTls({ servername: 'x' }, tcp, 'octet-counting'), /^--servername: only for a TLS drain/);
  t.throws(() => resolveTls({ tlsInsecureSkipVerify: true }, tcp, 'octet-counting'), /^--tls-insecure-skip-verify: only for a TLS drain/);
});

t.test('combinations that cannot mean what the operator wants', async (t) => {
  const r = (raw: Parameters<typeof resolveTls>[0]) => () => resolveTls(raw, tls, 'octet-counting');
  t.throws(r({ key: 'k' }), /^--key: needs --cert/);
  t.throws(r({ cert: 'c', key: 'k', keyPassphraseFile: '' }), /^--key-passphrase-file: empty value/);
  t.throws(r({ keyPassphraseFile: 'p' }), /^--key-passphrase-file: needs --key/);
  t.throws(r({ ca: 'a', fingerprint: hex }), /^--fingerprint: cannot be combined with --ca/);
  t.throws(r({ fingerprint: hex, tlsInsecureSkipVerify: true }), /^--tls-insecure-skip-verify: cannot be combined/);
  t.throws(r({ servername: 'bad name!' }), /^--servername: "bad name!" is not a host name/);
  t.throws(() => resolveTls({}, tls, 'lf'), /^--framing: lf is not allowed over TLS/);
});

t.test('paths are absolute, fingerprints normalised, the passphrase itself is never kept', async (t) => {
  process.env.AUDITFWD_KEY_PASSPHRASE = 'sekrit';
  t.teardown(() => delete process.env.AUDITFWD_KEY_PASSPHRASE);
  const { tls: s } = resolveTls({ cert: 'c.pem', key: 'k.pem', servername: '10.0.0.5', fingerprint: [`sha256:${hex}`] }, tls, 'octet-counting');
  t.equal(s!.cert, `${process.cwd()}/c.pem`);
  t.same(s!.fingerprints, [hex]);
  t.equal(s!.keyPassphraseEnv, true);
  t.notMatch(JSON.stringify(s), 'sekrit');
});
