import { readFile } from 'node:fs/promises';
import type { Format } from '../transforms/k8s-audit.js';
import { parseSelector, SelectorError, type Selector } from '../transforms/selector.js';
import { ConfigError } from './errors.js';
import { DEFAULTS, type RawSettings } from './options.js';
import { choiceSetting, listenAddress, numberSetting, toKebab } from './validate.js';
import { checkSdId } from './sd-element.js';
import { exposure } from '../sinks/tls-material.js';
import { shownPath } from './secret-path.js';
import type { WebhookLimits } from '../sources/webhook.js';

/** Settings of the Kubernetes audit features: --format, selectors, dedupe, the webhook listener. */
export type K8sRawSettings = Pick<
  RawSettings,
  | 'format'
  | 'sdId'
  | 'select'
  | 'exclude'
  | 'dedupe'
  | 'dedupeMaxEntries'
  | 'dedupeWindow'
  | 'listenWebhook'
  | 'webhookTlsCert'
  | 'webhookTlsKey'
  | 'webhookTokenFile'
  | 'webhookMaxRequestBytes'
  | 'webhookMaxEventBytes'
  | 'webhookTimeout'
  | 'webhookMaxInflightBytes'
  | 'webhookMaxInflightEvents'
  | 'webhookMaxDepth'
  | 'webhookBodyTimeout'
  | 'webhookMinBodyRate'
  | 'webhookMaxConnectionsPerClient'
  | 'webhookMaxRequestsPerClient'
>;

export interface K8sConfig {
  format: Format;
  sdId: string;
  select: Selector[];
  exclude: Selector[];
  dedupe: { maxEntries: number; windowMs: number } | undefined;
  webhook:
    | {
        host: string;
        port: number;
        tlsCertFile?: string;
        tlsKeyFile?: string;
        tokenFile?: string;
        maxRequestBytes: number;
        maxEventBytes: number;
        /** How long a request waits for its events to be handed on or durable before 503. */
        safeTimeoutMs: number;
        /** Abuse limits: memory held by requests in flight, nesting, body pace, places per client address. */
        limits: WebhookLimits;
        /** Loaded by loadK8sFiles at startup. */
        tls?: { cert: Buffer; key: Buffer };
        token?: string;
        /** Secret files others can read: logged once the logger is up. */
        warnings?: string[];
      }
    | undefined;
}

/** The defaults of these settings (all in the settings table, src/config/options.ts). */
export const K8S_DEFAULTS = DEFAULTS as Readonly<Record<keyof K8sRawSettings, string | number>>;

/** Validates the k8s settings; a bad selector names the offending character's column. */
export function resolveK8sConfig(raw: K8sRawSettings, once: boolean): K8sConfig {
  const format = choiceSetting<Format>('format', String(raw.format ?? K8S_DEFAULTS.format));
  const parsing = format !== 'raw';
  const needsParsing = (flag: string) => {
    if (!parsing) throw new ConfigError(`--${flag} needs --format k8s-audit or auto (raw does not read events)`);
  };
  const selectors = (flag: string, texts: string[] | undefined): Selector[] =>
    (texts ?? []).map((text) => {
      needsParsing(flag);
      try {
        return parseSelector(String(text));
      } catch (err) {
        if (err instanceof SelectorError) throw new ConfigError(`--${flag}: ${err.message}`);
        throw err;
      }
    });
  const select = selectors('select', raw.select);
  const exclude = selectors('exclude', raw.exclude);

  if (raw.sdId !== undefined) {
    needsParsing('sd-id');
    // Our own element carries an enterprise number: the IANA-registered names mean something else.
    if (!raw.sdId.includes('@')) throw new ConfigError(`--sd-id: "${raw.sdId}" must be name@<private enterprise number>`);
    try {
      checkSdId(raw.sdId);
    } catch (err) {
      throw new ConfigError(`--sd-id: ${(err as Error).message}`);
    }
  }

  let dedupe: K8sConfig['dedupe'];
  if (raw.dedupe) {
    needsParsing('dedupe');
    dedupe = {
      maxEntries: numberSetting('dedupe-max-entries', raw.dedupeMaxEntries ?? K8S_DEFAULTS.dedupeMaxEntries),
      windowMs: numberSetting('dedupe-window', raw.dedupeWindow ?? K8S_DEFAULTS.dedupeWindow),
    };
  } else if (raw.dedupeMaxEntries !== undefined || raw.dedupeWindow !== undefined) {
    throw new ConfigError(`--${raw.dedupeWindow !== undefined ? 'dedupe-window' : 'dedupe-max-entries'} needs --dedupe`);
  }

  let webhook: K8sConfig['webhook'];
  const webhookFlags = [
    'webhookTlsCert',
    'webhookTlsKey',
    'webhookTokenFile',
    'webhookMaxRequestBytes',
    'webhookMaxEventBytes',
    'webhookTimeout',
    'webhookMaxInflightBytes',
    'webhookMaxInflightEvents',
    'webhookMaxDepth',
    'webhookBodyTimeout',
    'webhookMinBodyRate',
    'webhookMaxConnectionsPerClient',
    'webhookMaxRequestsPerClient',
  ] as const;
  if (raw.listenWebhook !== undefined) {
    if (once) throw new ConfigError('--listen-webhook: cannot be used with --once (a listener has no end to read to)');
    if (Boolean(raw.webhookTlsCert) !== Boolean(raw.webhookTlsKey)) {
      throw new ConfigError(`--${raw.webhookTlsCert ? 'webhook-tls-key' : 'webhook-tls-cert'}: needed with --${raw.webhookTlsCert ? 'webhook-tls-cert' : 'webhook-tls-key'}`);
    }
    const maxRequestBytes = numberSetting('webhook-max-request-bytes', raw.webhookMaxRequestBytes ?? K8S_DEFAULTS.webhookMaxRequestBytes);
    const maxEventBytes = numberSetting('webhook-max-event-bytes', raw.webhookMaxEventBytes ?? K8S_DEFAULTS.webhookMaxEventBytes, { max: maxRequestBytes });
    const safeTimeoutMs = numberSetting('webhook-timeout', raw.webhookTimeout ?? K8S_DEFAULTS.webhookTimeout);
    const d = K8S_DEFAULTS;
    const limits: WebhookLimits = {
      // At least one request of the largest size must always fit.
      maxInflightBytes: numberSetting('webhook-max-inflight-bytes', raw.webhookMaxInflightBytes ?? d.webhookMaxInflightBytes, { min: maxRequestBytes }),
      maxInflightEvents: numberSetting('webhook-max-inflight-events', raw.webhookMaxInflightEvents ?? d.webhookMaxInflightEvents),
      maxDepth: numberSetting('webhook-max-depth', raw.webhookMaxDepth ?? d.webhookMaxDepth),
      bodyTimeoutMs: numberSetting('webhook-body-timeout', raw.webhookBodyTimeout ?? d.webhookBodyTimeout),
      minBodyRate: numberSetting('webhook-min-body-rate', raw.webhookMinBodyRate ?? d.webhookMinBodyRate),
      maxConnectionsPerClient: numberSetting('webhook-max-connections-per-client', raw.webhookMaxConnectionsPerClient ?? d.webhookMaxConnectionsPerClient),
      maxRequestsPerClient: numberSetting('webhook-max-requests-per-client', raw.webhookMaxRequestsPerClient ?? d.webhookMaxRequestsPerClient),
    };
    webhook = {
      ...listenAddress('listen-webhook', raw.listenWebhook),
      tlsCertFile: raw.webhookTlsCert,
      tlsKeyFile: raw.webhookTlsKey,
      tokenFile: raw.webhookTokenFile,
      maxRequestBytes,
      maxEventBytes,
      safeTimeoutMs,
      limits,
    };
  } else {
    const given = webhookFlags.find((k) => raw[k] !== undefined);
    if (given) throw new ConfigError(`--${toKebab(given)} needs --listen-webhook`);
  }
  return { format, sdId: String(raw.sdId ?? K8S_DEFAULTS.sdId), select, exclude, dedupe, webhook };
}

/** Reads the webhook's certificate, key and token at startup, so that a bad path is exit 2, not a crash later. */
export async function loadK8sFiles(k8s: K8sConfig): Promise<void> {
  const w = k8s.webhook;
  if (!w) return;
  const read = async (flag: string, path: string) => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new ConfigError(`--${flag}: cannot read ${shownPath(flag, path)} (${(err as NodeJS.ErrnoException).code})`);
    }
  };
  if (w.tlsCertFile && w.tlsKeyFile) {
    w.tls = { cert: await read('webhook-tls-cert', w.tlsCertFile), key: await read('webhook-tls-key', w.tlsKeyFile) };
    warnIfExposed(w, 'webhook-tls-key', w.tlsKeyFile);
    const { createSecureContext } = await import('node:tls');
    try {
      createSecureContext(w.tls);
    } catch (err) {
      throw new ConfigError(`--webhook-tls-cert/--webhook-tls-key: not a usable certificate and key (${(err as Error).message})`);
    }
  }
  if (w.tokenFile) {
    const token = (await read('webhook-token-file', w.tokenFile)).toString('utf8').trim();
    if (!token || /\s/.test(token)) throw new ConfigError(`--webhook-token-file: ${shownPath('webhook-token-file', w.tokenFile)} must hold one token (no spaces)`);
    w.token = token;
    warnIfExposed(w, 'webhook-token-file', w.tokenFile);
  }
}

function warnIfExposed(w: NonNullable<K8sConfig['webhook']>, flag: string, path: string): void {
  const exposed = exposure(flag, path);
  if (exposed) (w.warnings ??= []).push(exposed);
}
