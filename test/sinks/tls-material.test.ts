import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import { explainContextError, loadTls, TlsMaterialError } from '../../src/sinks/tls-material.js';
import type { TlsSettings } from '../../src/config/tls-settings.js';
import { hasOpenssl, TestPki } from '../helpers/certs.js';

const skip = !hasOpenssl() && 'openssl is not installed';

const settings = (over: Partial<TlsSettings>): TlsSettings => ({
  ca: undefined,
  cert: undefined,
  key: undefined,
  keyPassphraseFile: undefined,
  keyPassphraseEnv: false,
  servername: undefined,
  fingerprints: [],
  insecureSkipVerify: false,
  ...over,
});

t.test("an ASN.1 error is the passphrase's fault only for an encrypted key", async (t) => {
  const s = settings({ cert: '/c.pem', key: '/k.pem', keyPassphraseFile: '/p' });
  const asn1 = new Error('error:1E08010C:DECODER routines::unsupported');
  t.match(explainContextError(asn1, s, true), /^--key: \/k\.pem cannot be decrypted or parsed \(passphrase from --key-passphrase-file\)/);
  t.match(explainContextError(asn1, s, false), /^--key: \/k\.pem is not a PEM private key/);
  t.match(explainContextError(new Error('error:1C800064:Provider routines::bad decrypt'), s, false), /cannot be decrypted/);
});

/**
 * A wrong passphrase fails AES-CBC's padding check in about 255 of 256 tries ("bad decrypt"); in the
 * rest the padding checks out and the garbage fails as ASN.1. Before the fix that one said "not a PEM
 * private key" (a CI run on Node 24 met it). Wrong passphrases are tried until OpenSSL takes that path.
 */
t.test('a wrong passphrase that decrypts to garbage is still named as the passphrase', { skip }, async (t) => {
  const dir = t.testdir({});
  const pki = new TestPki(join(dir, 'pki'));
  const client = pki.issue(pki.ca('ca'), 'client', { usage: 'client', passphrase: 'right' });
  const key = readFileSync(client.key);
  const cert = readFileSync(client.cert);
  let wrong: string | undefined;
  for (let i = 0; i < 5000 && wrong === undefined; i++) {
    try {
      createSecureContext({ cert, key, passphrase: `wrong-${i}` });
    } catch (err) {
      if (!/bad decrypt/i.test((err as Error).message)) wrong = `wrong-${i}`;
    }
  }
  t.ok(wrong, 'a wrong passphrase that passes the padding check was found');
  const passFile = join(dir, 'pass');
  writeFileSync(passFile, `${wrong}\n`, { mode: 0o600 });
  const err = (() => {
    try {
      loadTls(settings({ cert: client.cert, key: client.key, keyPassphraseFile: passFile }));
    } catch (e) {
      return e;
    }
  })();
  t.type(err, TlsMaterialError);
  t.match((err as Error).message, /^--key: .*client\.key cannot be decrypted or parsed \(passphrase from --key-passphrase-file\)$/);
  t.notMatch((err as Error).message, new RegExp(wrong!), 'the passphrase itself is never shown');
});
