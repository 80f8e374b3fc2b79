import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { FACILITIES, SEVERITIES } from '../framing/rfc5424.js';
import { parseDestination, type Destination } from '../sinks/destination.js';
import type { Framing } from '../sinks/sink.js';
import { parseSdElements } from './sd-element.js';
import { resolveTls, type RawTlsSettings, type TlsSettings } from './tls-settings.js';
import { durationProblem, parseDuration, parseSize } from './units.js';
import { resolveK8sConfig, type K8sConfig, type K8sRawSettings } from './k8s-config.js';

/** A bad invocation or configuration: exit code 2 and one line naming the setting. */
export class ConfigError extends Error {}

export interface Config {
  files: string[];
  to: Destination;
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
  once: boolean;
  /** Saved read positions are not used: every file starts at --start-at (a backfill sent again). */
  ignorePositions: boolean;
  logLevel: string;
  pollMs: number;
  checkpointIntervalMs: number;
  reconnectMaxDelayMs: number;
  shutdownTimeoutMs: number;
  relpWindow: number;
  relpAckTimeoutMs: number;
  relpMaxRefusals: number;
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

export const DEFAULTS = {
  startAt: 'beginning',
  framing: 'octet-counting',
  facility: 'user',
  severity: 'info',
  /** Under the 200,000-byte octet count a stock rsyslog imtcp stays in sync with (see README). */
  maxMessageBytes: '128KiB',
  memoryMaxBytes: '16MiB',
  logLevel: 'info',
  pollInterval: '250ms',
  checkpointInterval: '1s',
  reconnectMaxDelay: '30s',
  shutdownTimeout: '5s',
  /** Measured: a wider window adds no throughput on loopback (README "RELP"). */
  relpWindow: 1024,
  relpAckTimeout: '90s',
  relpMaxRefusals: 3,
  unhealthyAfter: '60s',
  logFormat: 'auto',
  maxFiles: 1024,
  rotateWait: '5s',
  globRescanInterval: '1s',
  forgetAfter: '5m',
  /** Hours of a busy API server's audit log (~100-300 KB/s); small next to a node's disk. */
  bufferMaxBytes: '1GiB',
  whenFull: 'block',
  spillFsyncInterval: '1s',
  exitTimeout: '30s',
} as const;

export const RELP_WINDOW_LIMIT = 65536;

export const MAX_MESSAGE_BYTES_LIMIT = 64 * 1024 * 1024;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** systemd's StateDirectory, else the FHS place for root, else the XDG place for a user. */
export function defaultStateDir(): string {
  if (process.env.STATE_DIRECTORY) return process.env.STATE_DIRECTORY.split(':')[0];
  if (process.getuid?.() === 0) return '/var/lib/auditfwd';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'auditfwd');
}

/** The settings as given (flags today, a config file later), all still unparsed. */
export interface RawSettings extends K8sRawSettings, RawTlsSettings {
  file?: string[];
  to?: string;
  stateDir?: string;
  startAt?: string;
  framing?: string;
  facility?: string | number;
  severity?: string | number;
  hostname?: string;
  appName?: string;
  maxMessageBytes?: string | number;
  memoryMaxBytes?: string | number;
  once?: boolean;
  ignorePositions?: boolean;
  logLevel?: string;
  pollInterval?: string | number;
  checkpointInterval?: string | number;
  reconnectMaxDelay?: string | number;
  shutdownTimeout?: string | number;
  relpWindow?: string | number;
  relpAckTimeout?: string | number;
  relpMaxRefusals?: string | number;
  sdElement?: string[];
  metricsListen?: string;
  unhealthyAfter?: string | number;
  logFormat?: string;
  maxFiles?: string | number;
  rotateWait?: string | number;
  globRescanInterval?: string | number;
  forgetAfter?: string | number;
  bufferDir?: string;
  bufferMaxBytes?: string | number;
  whenFull?: string;
  spillFsyncInterval?: string | number;
  exitTimeout?: string | number;
}

function oneOf<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw new ConfigError(`--${flag}: "${value}" is not one of ${choices.join(', ')}`);
  return value as T;
}

function code(flag: string, value: string | number, table: Record<string, number>, max: number): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const n = Number(value);
    if (n >= 0 && n <= max) return n;
    throw new ConfigError(`--${flag}: ${value} is out of range (0-${max})`);
  }
  const n = table[value.toLowerCase()];
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" is not one of ${Object.keys(table).join(', ')} or 0-${max}`);
  return n;
}

// The validators every settings module uses (k8s-config.ts, tls-settings.ts): one wording per kind of error.
export function size(flag: string, value: string | number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseSize(value);
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" ${/^\s*-/.test(String(value)) ? 'is negative' : 'is not a size'} (e.g. 65536, 64KiB, 16MiB)`);
  if (n < min || n > max) throw new ConfigError(`--${flag}: ${value} is out of range (${min}-${max} bytes)`);
  return n;
}

export function duration(flag: string, value: string | number, minMs: number, maxMs = Number.MAX_SAFE_INTEGER): number {
  const n = parseDuration(value);
  if (n === undefined) throw new ConfigError(`--${flag}: "${value}" ${durationProblem(value)}`);
  if (n < minMs) throw new ConfigError(`--${flag}: ${value} is below the minimum of ${minMs} ms`);
  if (n > maxMs) throw new ConfigError(`--${flag}: ${value} is above the maximum of ${maxMs} ms`);
  return n;
}

export function integer(flag: string, value: string | number, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n)) throw new ConfigError(`--${flag}: "${value}" is not a whole number`);
  if (n < min || n > max) throw new ConfigError(`--${flag}: ${value} is out of range (${min}-${max})`);
  return n;
}

export const toKebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Turns raw settings into a Config, or throws a ConfigError naming the first bad one. */
export function resolveConfig(raw: RawSettings): Config {
  const d = { ...DEFAULTS, ...Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)) } as Required<RawSettings>;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string' && v === '' && k !== 'appName' && k !== 'to') throw new ConfigError(`--${toKebab(k)}: empty value`);
  }
  if (!raw.to) throw new ConfigError('--to is required (host:port, tcp://host:port, [::1]:6514 or - for stdout)');
  let to: Destination;
  try {
    to = parseDestination(raw.to);
  } catch (err) {
    throw new ConfigError(`--to: ${(err as Error).message}`);
  }
  let tls: TlsSettings | undefined;
  ({ to, tls } = resolveTls(raw, to, String(d.framing), (message) => {
    throw new ConfigError(message);
  }));
  if (to.transport !== 'stdout' && to.transport !== 'tcp' && to.transport !== 'tls' && to.transport !== 'relp' && to.transport !== 'relp+tls') throw new ConfigError(`--to: ${to.transport} is not supported yet`);
  const files = (raw.file ?? []).filter((f) => f !== undefined).map(String);
  const stateDir = raw.stateDir ?? defaultStateDir();
  // A pipe has no home of its own: stdin alone spills only where it was told to.
  const spills = raw.bufferDir !== undefined || raw.stateDir !== undefined || files.some((f) => f !== '-');
  return {
    files,
    to,
    stateDir,
    startAt: oneOf('start-at', String(d.startAt), ['beginning', 'end'] as const),
    framing: oneOf('framing', String(d.framing), ['octet-counting', 'lf'] as const),
    facility: code('facility', d.facility, FACILITIES, 23),
    severity: code('severity', d.severity, SEVERITIES, 7),
    hostname: raw.hostname ?? hostname(),
    appName: raw.appName,
    maxMessageBytes: size('max-message-bytes', d.maxMessageBytes, 1024, MAX_MESSAGE_BYTES_LIMIT),
    memoryMaxBytes: size('memory-max-bytes', d.memoryMaxBytes, 64 * 1024),
    once: Boolean(raw.once),
    ignorePositions: Boolean(raw.ignorePositions),
    logLevel: oneOf('log-level', String(d.logLevel), LOG_LEVELS),
    pollMs: duration('poll-interval', d.pollInterval, 10),
    checkpointIntervalMs: duration('checkpoint-interval', d.checkpointInterval, 10),
    reconnectMaxDelayMs: duration('reconnect-max-delay', d.reconnectMaxDelay, 100),
    shutdownTimeoutMs: duration('shutdown-timeout', d.shutdownTimeout, 0),
    relpWindow: integer('relp-window', d.relpWindow, 1, RELP_WINDOW_LIMIT),
    relpAckTimeoutMs: duration('relp-ack-timeout', d.relpAckTimeout, 100),
    relpMaxRefusals: integer('relp-max-refusals', d.relpMaxRefusals, 1, 1000),
    structuredData: parseSdElements('sd-element', (raw.sdElement ?? []).map(String)),
    metricsListen: raw.metricsListen === undefined ? undefined : listenAddress('metrics-listen', raw.metricsListen),
    unhealthyAfterMs: duration('unhealthy-after', d.unhealthyAfter, 0),
    logFormat: oneOf('log-format', String(d.logFormat), ['auto', 'json', 'pretty'] as const),
    k8s: resolveK8sConfig(raw, Boolean(raw.once)),
    maxFiles: integer('max-files', d.maxFiles, 1, 1_000_000),
    rotateWaitMs: duration('rotate-wait', d.rotateWait, 0),
    globRescanIntervalMs: duration('glob-rescan-interval', d.globRescanInterval, 10),
    forgetAfterMs: duration('forget-after', d.forgetAfter, 0),
    tls,
    bufferDir: spills ? (raw.bufferDir ?? join(stateDir, 'spill')) : undefined,
    bufferMaxBytes: size('buffer-max-bytes', d.bufferMaxBytes, 1024 * 1024),
    whenFull: oneOf('when-full', String(d.whenFull), ['block', 'drop-oldest', 'drop-newest'] as const),
    spillFsyncIntervalMs: duration('spill-fsync-interval', d.spillFsyncInterval, 10),
    exitTimeoutMs: duration('exit-timeout', d.exitTimeout, 0),
  };
}

/** HOST:PORT or [v6]:PORT to listen on; port 0 picks a free one (it is logged). */
/** HOST:PORT, [IPv6]:PORT or :PORT (every address) for a listener; port 0 picks a free one. */
export function listenAddress(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]*)):(\d+)$/.exec(value);
  if (!m) throw new ConfigError(`--${flag}: "${value}" is not HOST:PORT (e.g. 127.0.0.1:9100, [::]:9100, :9100)`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`--${flag}: port ${m[3]} is out of range (0-65535)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
