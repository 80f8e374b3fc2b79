import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import { nodeTls } from './lazy-tls.js';
import { systemTrust } from './system-trust.js';
import { PASSPHRASE_ENV, type TlsSettings } from '../config/tls-settings.js';
import { shownPath } from '../config/secret-path.js';
import type { Logger } from '../telemetry/log.js';

/** Material that cannot be used; the message names the flag and never contains a secret. */
export class TlsMaterialError extends Error {}

export interface LoadedTls {
  context: SecureContext;
  /** Where the trusted CAs came from, for the log. */
  trust: string;
  /** The client certificate's public facts, for the log. */
  client: { subject: string; validTo: string; fingerprint256: string } | undefined;
  warnings: string[];
}

function readOrFail(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsMaterialError(`--${flag}: cannot read ${shownPath(flag, path)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Node accepts a CA file without a single certificate in it and then trusts nothing; say so at once. */
function certificates(flag: string, path: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new TlsMaterialError(`--${flag}: ${path} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new TlsMaterialError(`--${flag}: certificate ${i + 1} in ${path} cannot be parsed`);
    }
  });
}

function passphrase(s: TlsSettings): string | undefined {
  if (s.keyPassphraseFile) return readOrFail('key-passphrase-file', s.keyPassphraseFile).toString('utf8').replace(/\r?\n$/, '');
  return process.env[PASSPHRASE_ENV];
}

/** A key anyone on the machine can read is no longer a secret; worth a warning, not a refusal. */
export function exposure(flag: string, path: string): string | undefined {
  try {
    const mode = statSync(path).mode;
    if (mode & 0o004) return `--${flag}: ${path} is readable by every user (mode ${(mode & 0o777).toString(8)}); use 0600 or 0640`;
  } catch {
    // read already succeeded; a race with a rotation is not worth a warning
  }
  return undefined;
}

/** Reads every file the settings name and builds the context; throws TlsMaterialError naming the flag. */
export function loadTls(s: TlsSettings): LoadedTls {
  const warnings: string[] = [];
  let ca: Buffer | string[] | undefined;
  let trust: string;
  if (s.ca) {
    ca = readOrFail('ca', s.ca);
    const now = Date.now();
    const cas = certificates('ca', s.ca, ca);
    if (cas.every((c) => Date.parse(c.validTo) < now)) warnings.push(`--ca: every certificate in ${s.ca} has expired`);
    trust = `${s.ca} (${cas.length} certificate${cas.length === 1 ? '' : 's'})`;
  } else {
    // Also with a pinned fingerprint or no verification: the chain is still checked against the
    // system store, for the log (authorizationError), and Node's default store is left empty.
    ({ ca, trust } = systemTrust());
    if (s.fingerprints.length) trust = `pinned sha256 fingerprint${s.fingerprints.length === 1 ? '' : 's'}`;
    else if (s.insecureSkipVerify) trust = 'none (--tls-insecure-skip-verify)';
  }
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  let client: LoadedTls['client'];
  if (s.cert && s.key) {
    cert = readOrFail('cert', s.cert);
    const leaf = certificates('cert', s.cert, cert)[0];
    if (Date.parse(leaf.validTo) < Date.now()) warnings.push(`--cert: ${s.cert} expired on ${leaf.validTo}`);
    client = { subject: leaf.subject.replace(/\n/g, ', '), validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 };
    key = readOrFail('key', s.key);
    const exposed = exposure('key', s.key);
    if (exposed) warnings.push(exposed);
  }
  const pass = key ? passphrase(s) : undefined;
  let context: SecureContext;
  try {
    context = nodeTls().createSecureContext({ ca, cert, key, passphrase: pass, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new TlsMaterialError(explainContextError(err as Error, s, key !== undefined && isEncryptedPem(key)));
  }
  return { context, trust, client, warnings };
}

/** PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) or traditional (`Proc-Type: 4,ENCRYPTED`) encryption. */
function isEncryptedPem(pem: Buffer): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || pem.includes('Proc-Type: 4,ENCRYPTED');
}

/**
 * OpenSSL's reasons, made actionable; the passphrase never appears in them, and is not added here.
 * A wrong passphrase usually fails the padding check ("bad decrypt"), but about one in 256 decrypts
 * to padding that checks out and then fails as ASN.1: for an encrypted key that is the passphrase too.
 */
export function explainContextError(err: Error, s: TlsSettings, encrypted: boolean): string {
  const m = err.message;
  if (/bad decrypt|bad password|interrupted or cancelled|PEM_read_bio_PrivateKey/i.test(m) || (encrypted && /ASN1|DECODER|unsupported|header too long|wrong tag/i.test(m))) {
    const source = s.keyPassphraseFile ? '--key-passphrase-file' : s.keyPassphraseEnv ? PASSPHRASE_ENV : `no passphrase given (--key-passphrase-file or ${PASSPHRASE_ENV})`;
    return `--key: ${s.key} cannot be decrypted or parsed (passphrase from ${source})`;
  }
  if (/key values mismatch/i.test(m)) return `--key: ${s.key} is not the private key of --cert ${s.cert}`;
  if (/no start line|unsupported|ASN1|DECODER/i.test(m)) return `--key: ${s.key} is not a PEM private key`;
  return `--cert/--key: cannot be used (${m.replace(/^error:[0-9A-F]+:/, '')})`;
}

/**
 * The TLS material in use. Connections take it when they open, so after reload() (SIGHUP) the next
 * connection uses rotated certificates; a reload that fails keeps the material that worked.
 */
export class TlsMaterial {
  private loaded: LoadedTls;

  constructor(
    readonly settings: TlsSettings,
    private readonly log: Logger,
  ) {
    this.loaded = loadTls(settings);
    this.report('TLS material loaded');
  }

  get current(): LoadedTls {
    return this.loaded;
  }

  /** Re-reads every file. Returns whether the new material is in use. */
  reload(): boolean {
    try {
      this.loaded = loadTls(this.settings);
    } catch (err) {
      this.log.error({ reason: (err as Error).message }, 'TLS material reload failed; the previous certificates stay in use');
      return false;
    }
    this.report('TLS material reloaded; new connections use it');
    return true;
  }

  private report(msg: string): void {
    const { trust, client, warnings } = this.loaded;
    for (const w of warnings) this.log.warn(w);
    this.log.info({ trust, clientCertificate: client }, msg);
  }
}
