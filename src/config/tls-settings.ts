import { resolve } from 'node:path';
import { isIP } from 'node:net';
import type { Destination } from '../sinks/destination.js';
import { ConfigError } from './errors.js';
import { PASSPHRASE_ENV, type RawSettings } from './options.js';

export { PASSPHRASE_ENV };

/** TLS as configured: file paths only. The material itself is read (and re-read on SIGHUP) by TlsMaterial. */
export interface TlsSettings {
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  keyPassphraseFile: string | undefined;
  /** The passphrase is in the environment; read at load time so it is never copied into the config. */
  keyPassphraseEnv: boolean;
  servername: string | undefined;
  /** Lower-case hex SHA-256 digests of accepted server certificates (DER). */
  fingerprints: string[];
  insecureSkipVerify: boolean;
}

export type RawTlsSettings = Pick<RawSettings, 'tls' | 'ca' | 'cert' | 'key' | 'keyPassphraseFile' | 'servername' | 'fingerprint' | 'tlsInsecureSkipVerify'>;

const fail = (message: string): never => {
  throw new ConfigError(message);
};

/** `sha256:AB:CD:…`, `sha256:abcd…` or bare hex; only SHA-256: SHA-1, which RFC 5425 also names, is no longer collision resistant. */
export function parseFingerprint(text: string): string {
  let s = text.trim();
  const algo = /^([a-z][a-z0-9-]*):/i.exec(s);
  if (algo && !/^[0-9a-f]{2}$/i.test(algo[1])) {
    if (!/^sha-?256$/i.test(algo[1])) fail(`--fingerprint: "${algo[1]}" is not supported (use sha256:HEX)`);
    s = s.slice(algo[0].length);
  }
  const hex = s.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) fail(`--fingerprint: "${text}" is not a SHA-256 fingerprint (sha256: and 64 hex digits, colons allowed)`);
  return hex;
}

/**
 * Decides whether the drain is TLS and with what. Any TLS flag without a TLS destination is an error rather
 * than ignored: an operator who gave --ca expects encryption, and plaintext must never be the quiet outcome.
 */
export function resolveTls(raw: RawTlsSettings, to: Destination, framing: string): { to: Destination; tls: TlsSettings | undefined } {
  if (raw.tls && to.transport === 'stdout') fail('--tls: --to - writes to stdout; TLS needs a drain host:port');
  if (raw.tls && to.transport === 'tcp') to = { ...to, transport: 'tls' };
  if (raw.tls && to.transport === 'relp') to = { ...to, transport: 'relp+tls' };
  if (raw.tls && to.transport === 'nats') to = { ...to, transport: 'nats+tls' };
  const isTls = to.transport === 'tls' || to.transport === 'relp+tls' || to.transport === 'nats+tls';
  const given: Array<[string, unknown]> = [
    ['ca', raw.ca],
    ['cert', raw.cert],
    ['key', raw.key],
    ['key-passphrase-file', raw.keyPassphraseFile],
    ['servername', raw.servername],
    ['fingerprint', raw.fingerprint],
    ['tls-insecure-skip-verify', raw.tlsInsecureSkipVerify || undefined],
  ];
  if (!isTls) {
    const flag = given.find(([, v]) => v !== undefined);
    if (flag) fail(`--${flag[0]}: only for a TLS drain (add --tls or use --to tls://host:port)`);
    return { to, tls: undefined };
  }
  if (to.transport === 'tls' && framing === 'lf') fail('--framing: lf is not allowed over TLS (RFC 5425 requires octet counting)');
  for (const [flag, v] of given) if (v === '') fail(`--${flag}: empty value`);
  if (raw.cert && !raw.key) fail('--cert: needs --key (the client certificate\'s private key)');
  if (raw.key && !raw.cert) fail('--key: needs --cert (the client certificate)');
  if (raw.keyPassphraseFile && !raw.key) fail('--key-passphrase-file: needs --key');
  const fingerprints = [raw.fingerprint ?? []].flat().map((f) => parseFingerprint(String(f)));
  if (fingerprints.length && raw.ca) fail('--fingerprint: cannot be combined with --ca (the pinned certificate is the trust anchor)');
  if (raw.tlsInsecureSkipVerify && (raw.ca || fingerprints.length)) fail('--tls-insecure-skip-verify: cannot be combined with --ca or --fingerprint');
  if (raw.servername !== undefined && !isIP(raw.servername) && !/^[a-z0-9*]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(raw.servername)) {
    fail(`--servername: "${raw.servername}" is not a host name`);
  }
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(String(p)));
  return {
    to,
    tls: {
      ca: path(raw.ca),
      cert: path(raw.cert),
      key: path(raw.key),
      keyPassphraseFile: path(raw.keyPassphraseFile),
      keyPassphraseEnv: process.env[PASSPHRASE_ENV] !== undefined,
      servername: raw.servername,
      fingerprints,
      insecureSkipVerify: Boolean(raw.tlsInsecureSkipVerify),
    },
  };
}
