import { basename, dirname } from 'node:path';
import { isNats, type Destination } from '../sinks/destination.js';
import type { NatsAccess } from '../sinks/nats-connect.js';
import { ConfigError } from './errors.js';
import type { RawSettings } from './options.js';
import type { TlsSettings } from './tls-settings.js';
import { numberSetting } from './validate.js';

export interface NatsConfig {
  access: NatsAccess;
  subject: string;
  window: number;
  ackTimeoutMs: number;
}

const NATS_FLAGS = ['nats-subject', 'nats-window', 'nats-ack-timeout', 'nats-creds', 'nats-nkey', 'nats-token-file'] as const;
type NatsRaw = Pick<RawSettings, 'natsSubject' | 'natsWindow' | 'natsAckTimeout' | 'natsCreds' | 'natsNkey' | 'natsTokenFile' | 'appName' | 'file' | 'listenWebhook'>;
const rawOf = (raw: NatsRaw, flag: (typeof NATS_FLAGS)[number]) => raw[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof NatsRaw];

/** A subject token is anything but whitespace and the wildcards; the app name may hold them. */
const subjectToken = (s: string) => s.replace(/[\s*>]/g, '_') || 'auditfwd';

/**
 * The NATS settings of a nats:// destination; undefined for any other. Flags meant for NATS with
 * another destination are errors, as TLS flags are without TLS: they would be silently ignored.
 */
export function resolveNats(raw: NatsRaw, to: Destination, tls: TlsSettings | undefined, defaults: { window: string | number; ackTimeout: string | number }): NatsConfig | undefined {
  if (!isNats(to)) {
    const given = NATS_FLAGS.find((f) => rawOf(raw, f) !== undefined);
    if (given) throw new ConfigError(`--${given}: only for a NATS destination (--to nats://host:4222)`);
    return undefined;
  }
  if (tls) {
    const unsupported = ([['fingerprint', tls.fingerprints.length > 0], ['key-passphrase-file', tls.keyPassphraseFile !== undefined || tls.keyPassphraseEnv], ['servername', tls.servername !== undefined], ['tls-insecure-skip-verify', tls.insecureSkipVerify]] as const).find(([, on]) => on);
    if (unsupported) throw new ConfigError(`--${unsupported[0]}: not supported with nats+tls:// (NATS TLS takes --ca, --cert and --key)`);
  }
  const auth = [['nats-creds', raw.natsCreds], ['nats-nkey', raw.natsNkey], ['nats-token-file', raw.natsTokenFile]].filter(([, v]) => v !== undefined);
  if (auth.length > 1) throw new ConfigError(`--${auth[1][0]}: give one of --nats-creds, --nats-nkey, --nats-token-file`);
  const files = (raw.file ?? []).map(String).filter((f) => f !== '-');
  const app = raw.appName ?? (files.length > 0 ? basename(dirname(files[0])) : raw.listenWebhook ? 'kube-apiserver' : 'auditfwd');
  const subject = raw.natsSubject ?? `auditfwd.${subjectToken(app)}`;
  if (!/^[^\s*>.]+(\.[^\s*>.]+)*$/.test(subject)) throw new ConfigError(`--nats-subject: "${subject}" is not a subject to publish on (dot-separated tokens, no wildcards or spaces)`);
  return {
    access: {
      servers: to.servers ?? [{ host: to.host, port: to.port }],
      ...(tls && { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } }),
      ...(raw.natsCreds !== undefined && { credsFile: String(raw.natsCreds) }),
      ...(raw.natsNkey !== undefined && { nkeyFile: String(raw.natsNkey) }),
      ...(raw.natsTokenFile !== undefined && { tokenFile: String(raw.natsTokenFile) }),
    },
    subject,
    window: numberSetting('nats-window', raw.natsWindow ?? defaults.window),
    ackTimeoutMs: numberSetting('nats-ack-timeout', raw.natsAckTimeout ?? defaults.ackTimeout),
  };
}
