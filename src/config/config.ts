import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { FACILITIES, SEVERITIES } from '../framing/rfc5424.js';
import { describeDestination, natsSeedList, parseDestination, type Destination } from '../sinks/destination.js';
import type { Framing } from '../sinks/sink.js';
import type { PoolMode } from '../sinks/pool.js';
import { parseSdElements } from './sd-element.js';
import { resolveTls, type TlsSettings } from './tls-settings.js';
import { resolveK8sConfig, type K8sConfig } from './k8s-config.js';
import { resolveNats, type NatsConfig } from './nats-config.js';
import { ConfigError } from './errors.js';
import { DEFAULTS, type RawSettings } from './options.js';
import { choiceSetting, code, listenAddress, numberOrWord, numberSetting, toKebab } from './validate.js';

// Where modules outside this folder have always found them.
export { ConfigError } from './errors.js';
export type { RawSettings } from './options.js';

export interface Config {
  files: string[];
  /** The first (or only) drain; all of them, in the order given, are `destinations`. */
  to: Destination;
  /** Every --to, one transport: more than one makes a pool. */
  destinations: Destination[];
  pool: PoolMode;
  stateDir: string;
  startAt: 'beginning' | 'end';
  framing: Framing;
  facility: number;
  severity: number;
  hostname: string;
  /** undefined: the file's parent folder name, or "auditfwd" for stdin. */
  appName: string | undefined;
  maxMessageBytes: number;
  memoryMaxBytes: number;
  /** --heap-slack-bytes: 0 leaves full collections to V8. */
  heapSlackBytes: number;
  once: boolean;
  /** Saved read positions are not used: every file starts at --start-at (a backfill sent again). */
  ignorePositions: boolean;
  logLevel: string;
  pollMs: number;
  checkpointIntervalMs: number;
  carefulStartMs: number;
  reconnectMaxDelayMs: number;
  shutdownTimeoutMs: number;
  /** --reconnect-every; undefined: off. */
  reconnectEveryMs: number | undefined;
  /** Bytes of complete frames kept to be sent again after a lost TCP/TLS connection (0: off; auto: sized by the sink from the kernel's buffer limits). */
  tcpResendWindowBytes: number | 'auto';
  tcpResendWindowStore: 'file' | 'memory';
  relpWindow: number;
  relpAckTimeoutMs: number;
  relpMaxRefusals: number;
  /** Set when the destination is NATS JetStream (nats://, nats+tls://). */
  nats: NatsConfig | undefined;
  /** Encoded SD-ELEMENTs added to every message ('' for none). */
  structuredData: string;
  /** Where /metrics, /healthz and /readyz are served; undefined: not served. */
  metricsListen: { host: string; port: number } | undefined;
  /** /healthz turns 503 when the drain was unreachable, or the buffer full, this long. */
  unhealthyAfterMs: number;
  logFormat: 'auto' | 'json' | 'pretty';
  /** --format, selectors, dedupe, webhook: src/config/k8s-config.ts. */
  k8s: K8sConfig;
  maxFiles: number;
  rotateWaitMs: number;
  globRescanIntervalMs: number;
  forgetAfterMs: number;
  /** Set when the drain is TLS (tls://, tcp+tls:// or --tls). */
  tls: TlsSettings | undefined;
  /** The disk spill's folder; undefined: memory only (stdin without --state-dir or --buffer-dir). */
  bufferDir: string | undefined;
  bufferMaxBytes: number;
  whenFull: 'block' | 'drop-oldest' | 'drop-newest';
  spillFsyncIntervalMs: number;
  exitTimeoutMs: number;
}

/** systemd's StateDirectory, else the FHS place for root, else the XDG place for a user. */
export function defaultStateDir(): string {
  if (process.env.STATE_DIRECTORY) return process.env.STATE_DIRECTORY.split(':')[0];
  if (process.getuid?.() === 0) return '/var/lib/auditfwd';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'auditfwd');
}

/**
 * Every --to (a list, or one string), parsed, TLS applied. Kept generic: a pool is any list of
 * destinations of one transport, whatever the transport.
 */
function resolveDestinations(raw: RawSettings, framing: string): { to: Destination; destinations: Destination[]; tls: TlsSettings | undefined } {
  const list = [raw.to ?? []].flat().map(String);
  if (list.length === 0 || list.every((g) => g === '')) throw new ConfigError('--to is required (host:port, tcp://host:port, [::1]:6514 or - for stdout)');
  // NATS seeds are one destination (a cluster the client fails over within); other lists are a pool.
  const seeds = natsSeedList(list);
  const given = seeds ? [seeds] : list;
  const parsed = given.map((text) => {
    try {
      return parseDestination(text);
    } catch (err) {
      throw new ConfigError(`--to: ${(err as Error).message}`);
    }
  });
  const { to, tls } = resolveTls(raw, parsed[0], framing);
  const destinations = [to, ...parsed.slice(1).map((p) => resolveTls(raw, p, framing).to)];
  if (destinations.length > 1 && to.transport === 'stdout') throw new ConfigError('--to: - (stdout) cannot be one of several drains');
  const other = destinations.find((x) => x.transport !== to.transport);
  if (other) throw new ConfigError(`--to: the drains of a pool use one transport (${describeDestination(to)} and ${describeDestination(other)})`);
  const seen = new Set<string>();
  for (const x of destinations) {
    const name = describeDestination(x);
    if (seen.has(name)) throw new ConfigError(`--to: ${name} is given twice`);
    seen.add(name);
  }
  return { to, destinations, tls };
}

/** Turns raw settings into a Config, or throws a ConfigError naming the first bad one. */
export function resolveConfig(raw: RawSettings): Config {
  const d = { ...DEFAULTS, ...Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) } as Required<RawSettings>;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string' && v === '' && k !== 'appName' && k !== 'to') throw new ConfigError(`--${toKebab(k)}: empty value`);
  }
  const { to, destinations, tls } = resolveDestinations(raw, String(d.framing));
  const nats = resolveNats(raw, to, tls, { window: d.natsWindow, ackTimeout: d.natsAckTimeout });
  const files = (raw.file ?? []).filter((f) => f !== undefined).map(String);
  const stateDir = raw.stateDir ?? defaultStateDir();
  // A pipe has no home of its own: stdin alone spills only where it was told to.
  const spills = raw.bufferDir !== undefined || raw.stateDir !== undefined || files.some((f) => f !== '-');
  return {
    files,
    to,
    destinations,
    pool: choiceSetting<Config['pool']>('pool', String(d.pool)),
    stateDir,
    startAt: choiceSetting<Config['startAt']>('start-at', String(d.startAt)),
    framing: choiceSetting<Config['framing']>('framing', String(d.framing)),
    facility: code('facility', d.facility, FACILITIES, 23),
    severity: code('severity', d.severity, SEVERITIES, 7),
    hostname: raw.hostname ?? hostname(),
    appName: raw.appName,
    maxMessageBytes: numberSetting('max-message-bytes', d.maxMessageBytes),
    memoryMaxBytes: numberSetting('memory-max-bytes', d.memoryMaxBytes),
    heapSlackBytes: numberSetting('heap-slack-bytes', d.heapSlackBytes),
    once: Boolean(raw.once),
    ignorePositions: Boolean(raw.ignorePositions),
    logLevel: choiceSetting<Config['logLevel']>('log-level', String(d.logLevel)),
    pollMs: numberSetting('poll-interval', d.pollInterval),
    checkpointIntervalMs: numberSetting('checkpoint-interval', d.checkpointInterval),
    carefulStartMs: numberSetting('careful-start', d.carefulStart),
    reconnectMaxDelayMs: numberSetting('reconnect-max-delay', d.reconnectMaxDelay),
    shutdownTimeoutMs: numberSetting('shutdown-timeout', d.shutdownTimeout),
    reconnectEveryMs: raw.reconnectEvery === undefined ? undefined : numberSetting('reconnect-every', raw.reconnectEvery),
    tcpResendWindowBytes: numberOrWord('tcp-resend-window', d.tcpResendWindow) as number | 'auto',
    tcpResendWindowStore: choiceSetting<Config['tcpResendWindowStore']>('tcp-resend-window-store', String(d.tcpResendWindowStore)),
    relpWindow: numberSetting('relp-window', d.relpWindow),
    relpAckTimeoutMs: numberSetting('relp-ack-timeout', d.relpAckTimeout),
    relpMaxRefusals: numberSetting('relp-max-refusals', d.relpMaxRefusals),
    nats,
    structuredData: parseSdElements('sd-element', (raw.sdElement ?? []).map(String)),
    metricsListen: raw.metricsListen === undefined ? undefined : listenAddress('metrics-listen', raw.metricsListen),
    unhealthyAfterMs: numberSetting('unhealthy-after', d.unhealthyAfter),
    logFormat: choiceSetting<Config['logFormat']>('log-format', String(d.logFormat)),
    k8s: resolveK8sConfig(raw, Boolean(raw.once)),
    maxFiles: numberSetting('max-files', d.maxFiles),
    rotateWaitMs: numberSetting('rotate-wait', d.rotateWait),
    globRescanIntervalMs: numberSetting('glob-rescan-interval', d.globRescanInterval),
    forgetAfterMs: numberSetting('forget-after', d.forgetAfter),
    tls,
    bufferDir: spills ? (raw.bufferDir ?? join(stateDir, 'spill')) : undefined,
    bufferMaxBytes: numberSetting('buffer-max-bytes', d.bufferMaxBytes),
    whenFull: choiceSetting<Config['whenFull']>('when-full', String(d.whenFull)),
    spillFsyncIntervalMs: numberSetting('spill-fsync-interval', d.spillFsyncInterval),
    exitTimeoutMs: numberSetting('exit-timeout', d.exitTimeout),
  };
}
