import { DEFAULT_SD_ID } from '../transforms/k8s-audit.js';
import { MAX_INFLIGHT_REQUESTS } from '../sources/webhook-budget.js';
import { sdSpecsFromObject } from './sd-element.js';
import { parseDuration, parseSize } from './units.js';

/**
 * Every setting, once: the command line (argv.ts), the config-file keys and their types (file.ts),
 * the defaults and ranges resolveConfig checks, what SIGHUP may change (ops/reload.ts), the
 * effective configuration --check-config prints, --help's groups and docs/flags.md all come from
 * this table. A new setting is one entry here plus where resolveConfig turns it into a Config field.
 */

export const GROUPS = ['Input', 'Output', 'TLS', 'Kubernetes audit', 'Buffering', 'Operations'] as const;
export type Group = (typeof GROUPS)[number];

/**
 * How a value is read. size: bytes with units (64KiB); duration: ms with units (5s); integer: a
 * whole number; choice: one of `choices`; code: a name or its number (syslog facility, severity);
 * string: free text or a path, checked where it is used; list: repeatable strings.
 */
export type Kind = 'string' | 'boolean' | 'list' | 'size' | 'duration' | 'integer' | 'choice' | 'code';

export interface Setting {
  /** The long flag, without dashes. */
  readonly flag: string;
  readonly alias?: string;
  readonly kind: Kind;
  /** As written in a config file; resolved and validated like a given value. */
  readonly default?: string | number;
  /** The default when it is not a constant (it depends on the machine or on other settings). */
  readonly defaultText?: string;
  /** Bounds of size (bytes), duration (ms) and integer settings. */
  readonly min?: number;
  readonly max?: number;
  /** A bound that is another setting's value (e.g. "--webhook-max-request-bytes"). */
  readonly rangeText?: string;
  readonly choices?: readonly string[];
  /** A word a size, duration or integer setting takes besides a number (`auto`): the module then chooses. */
  readonly word?: string;
  readonly description: string;
  readonly group: Group;
  /** Config-file key; default: the flag with "_" for "-". null: the flag means nothing in a file. */
  readonly fileKey?: string | null;
  /** The file may also give a mapping; this turns it into the flag's values. */
  readonly fromMapping?: (value: Record<string, unknown>) => string[];
  /** How SIGHUP applies a change: at once, by reconnecting the sink, or by rebuilding the encoders. Unset: restart. */
  readonly reload?: 'immediate' | 'sink' | 'encoders';
  /** Names a file holding a secret: its value is only shown when it looks like a path. */
  readonly secret?: boolean;
  /** Another setting this one needs; its default is then not printed by --check-config. */
  readonly requires?: string;
}

export const MAX_MESSAGE_BYTES_LIMIT = 64 * 1024 * 1024;
export const RELP_WINDOW_LIMIT = 65536;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Where the key's passphrase may come from besides --key-passphrase-file; never a flag (it would show in ps). */
export const PASSPHRASE_ENV = 'AUDITFWD_KEY_PASSPHRASE';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const TABLE = [
  { flag: 'file', alias: 'f', kind: 'list', group: 'Input', fileKey: 'files', description: 'File to follow (repeatable); - is stdin. Without --file, stdin is read' },
  { flag: 'to', alias: 't', kind: 'list', group: 'Output', reload: 'sink', description: 'Drain: host:port, tcp://host:port, [::1]:port, - for stdout, or nats://host:4222 (NATS JetStream); repeatable: a pool of drains of one transport (see --pool), or for nats:// the seeds of one cluster (also as host:port,host:port)' },
  { flag: 'pool', kind: 'choice', choices: ['failover', 'round-robin'], default: 'failover', group: 'Output', reload: 'sink', description: 'With several --to: failover (the first connected drain in the order given; one that comes back is taken back) | round-robin (batches dealt to the connected drains in turn)' },
  { flag: 'state-dir', kind: 'string', group: 'Input', defaultText: '$STATE_DIRECTORY, /var/lib/auditfwd for root, else ~/.local/state/auditfwd', description: 'Where read positions are kept' },
  { flag: 'start-at', kind: 'choice', choices: ['beginning', 'end'], default: 'beginning', group: 'Input', description: 'Where a file never seen before starts' },
  { flag: 'framing', kind: 'choice', choices: ['octet-counting', 'lf'], default: 'octet-counting', group: 'Output', reload: 'sink', description: 'octet-counting (RFC 6587) | lf' },
  { flag: 'facility', kind: 'code', default: 'user', rangeText: 'name or 0-23', group: 'Output', reload: 'encoders', description: 'Syslog facility name or 0-23' },
  { flag: 'severity', kind: 'code', default: 'info', rangeText: 'name or 0-7', group: 'Output', reload: 'encoders', description: 'Syslog severity name or 0-7' },
  { flag: 'hostname', kind: 'string', group: 'Output', defaultText: "this machine's name", reload: 'encoders', description: 'HOSTNAME field' },
  { flag: 'app-name', kind: 'string', group: 'Output', defaultText: "the file's parent folder name; auditfwd for stdin", reload: 'encoders', description: 'APP-NAME field' },
  // Under the 200,000-byte octet count a stock rsyslog imtcp stays in sync with (README).
  { flag: 'max-message-bytes', kind: 'size', default: '128KiB', min: 1024, max: MAX_MESSAGE_BYTES_LIMIT, group: 'Output', description: 'Longer messages are truncated with a marker' },
  // Counted in the memory batches hold (a 540 KB batch alone in its 1 MiB slab counts 1 MiB). 4 MiB: a
  // file being caught up on waits for a sending drain rather than spill (Batch.canWait), so a smaller
  // budget no longer costs RELP the spill's CPU (it did, +24% per GB); the never-reading drain's peak
  // RSS 65.1 -> 62.7 MB (bench/README.md, RSS).
  { flag: 'memory-max-bytes', kind: 'size', default: '4MiB', min: 64 * 1024, group: 'Buffering', description: 'Memory held by messages between reading and the drain (what their buffers keep from reuse)' },
  // 2 MiB: after 3 GB at full speed, peak RSS raw 64.8 MB and k8s-audit 62.2 against 70.5 and 68.3, 6-7 collections of 1-5 ms (docs/design.md, "A bounded heap").
  { flag: 'heap-slack-bytes', kind: 'size', default: '2MiB', min: 0, max: GiB, group: 'Buffering', description: "Garbage the JavaScript heap may gather before auditfwd asks V8 for a full collection (checked every 100 ms), so that RSS does not grow with what was forwarded; 0 leaves collections to V8 alone" },
  { flag: 'once', kind: 'boolean', group: 'Input', description: 'Read the files to their current end, deliver everything, exit' },
  { flag: 'ignore-positions', kind: 'boolean', group: 'Input', description: 'Do not use the saved read positions: every file starts at --start-at (e.g. to send a file with --once again); positions are saved anew' },
  { flag: 'log-level', kind: 'choice', choices: LOG_LEVELS, default: 'info', group: 'Operations', reload: 'immediate', description: "auditfwd's own log level" },
  { flag: 'poll-interval', kind: 'duration', default: '250ms', min: 10, group: 'Input', description: 'Stat poll behind filesystem events' },
  { flag: 'checkpoint-interval', kind: 'duration', default: '1s', min: 10, group: 'Input', description: 'How often read positions are saved' },
  // A crash loop's runs die while catching up; 10 s covers a catch-up of ~1 GB at full speed.
  { flag: 'careful-start', kind: 'duration', default: '10s', min: 0, max: 3_600_000, group: 'Input', description: "For this long after start (not with --once), every read goes to a tcp/tls drain in 128 KiB pieces, each position committed as the socket takes it: a kill -9 then repeats a piece, not a 512 KiB read (a crash loop's runs die while catching up); costs ~22% more CPU per GB meanwhile; 0 turns it off" },
  { flag: 'reconnect-max-delay', kind: 'duration', default: '30s', min: 100, group: 'Output', reload: 'sink', description: 'Cap of the reconnect backoff' },
  // auto: what the kernels can hold, from /proc (src/sinks/resend-window.ts); a fixed 4 MiB lost lines in 4 of 10 runs (docs/delivery.md).
  { flag: 'tcp-resend-window', kind: 'size', default: 'auto', word: 'auto', min: 0, max: GiB, group: 'Output', reload: 'sink', description: 'tcp:// and tls://: after a connection ends without auditfwd closing it, the last this many bytes of messages are sent again first (duplicates, counted, instead of losing what the dead drain held); auto: the most one connection can hold in flight, tcp_wmem + tcp_rmem maxima from /proc (10 MiB elsewhere), times the members of a round-robin pool, at most 64 MiB; 0 turns it off.' },
  { flag: 'tcp-resend-window-store', kind: 'choice', choices: ['file', 'memory'], default: 'file', group: 'Output', reload: 'sink', description: 'Where --tcp-resend-window is kept: file (an unlinked file in --buffer-dir that grows to its size, held by the page cache: not in RSS, written out by the kernel like any file) | memory (in RSS, no disk writes); memory without a buffer folder (stdin alone)' },
  { flag: 'reconnect-every', kind: 'duration', min: 1000, defaultText: 'off', group: 'Output', reload: 'sink', description: 'Close each drain connection after about this long (±10%), between two messages, and open a new one at once: L4 load balancers then spread long-lived senders' },
  { flag: 'shutdown-timeout', kind: 'duration', default: '5s', min: 0, group: 'Buffering', description: 'On SIGTERM/SIGINT, how long to keep sending what was read' },
  // Measured: a wider window adds no throughput on loopback (README "RELP").
  { flag: 'relp-window', kind: 'integer', default: 1024, min: 1, max: RELP_WINDOW_LIMIT, group: 'Output', reload: 'sink', description: 'relp://: messages sent and not yet acknowledged, at most' },
  { flag: 'relp-ack-timeout', kind: 'duration', default: '90s', min: 100, group: 'Output', reload: 'sink', description: 'relp://: with messages in flight, a drain silent this long is reconnected' },
  { flag: 'relp-max-refusals', kind: 'integer', default: 3, min: 1, max: 1000, group: 'Output', reload: 'sink', description: 'relp://: a message the drain refuses this many times is dropped and counted' },
  { flag: 'nats-subject', kind: 'string', group: 'Output', defaultText: 'auditfwd.<app-name>', reload: 'sink', requires: 'to nats://', description: 'nats://: subject the messages are published on; a JetStream stream must capture it' },
  // Measured: 256 and 1024 in flight the same within the noise on loopback (bench/README.md "NATS JetStream"); as RELP's window.
  { flag: 'nats-window', kind: 'integer', default: 1024, min: 1, max: RELP_WINDOW_LIMIT, group: 'Output', reload: 'sink', requires: 'to nats://', description: 'nats://: messages published and not yet acknowledged by JetStream, at most' },
  { flag: 'nats-ack-timeout', kind: 'duration', default: '5s', min: 100, max: 600_000, group: 'Output', reload: 'sink', requires: 'to nats://', description: 'nats://: a publish not acknowledged this long is published again (same Nats-Msg-Id)' },
  { flag: 'nats-creds', kind: 'string', group: 'Output', reload: 'sink', requires: 'to nats://', secret: true, description: 'nats://: NATS credentials file (user JWT and nkey seed), as nats --creds' },
  { flag: 'nats-nkey', kind: 'string', group: 'Output', reload: 'sink', requires: 'to nats://', secret: true, description: 'nats://: file holding an nkey seed, as nats --nkey' },
  { flag: 'nats-token-file', kind: 'string', group: 'Output', reload: 'sink', requires: 'to nats://', secret: true, description: 'nats://: file holding the NATS token' },
  { flag: 'config', alias: 'c', kind: 'string', group: 'Operations', fileKey: null, description: 'YAML (or JSON) file with any of these settings (state-dir → state_dir); flags override it; SIGHUP re-reads it' },
  { flag: 'check-config', kind: 'boolean', group: 'Operations', fileKey: null, description: 'Validate the settings, load every file they name, check the state and spill folders, print the effective configuration (secrets redacted), exit' },
  { flag: 'sd-element', kind: 'list', group: 'Output', reload: 'encoders', fromMapping: sdSpecsFromObject, description: 'Structured data added to every message, e.g. \'instance@47450 az=z1 id="a b"\' (repeatable)' },
  { flag: 'metrics-listen', kind: 'string', group: 'Operations', defaultText: 'off', description: 'HOST:PORT serving /metrics (Prometheus), /healthz and /readyz' },
  { flag: 'unhealthy-after', kind: 'duration', default: '60s', min: 0, group: 'Operations', reload: 'immediate', description: '/healthz turns 503 once the drain is unreachable or the buffer full this long' },
  { flag: 'log-format', kind: 'choice', choices: ['auto', 'json', 'pretty'], default: 'auto', group: 'Operations', description: 'auto (readable on a terminal, else JSON) | json | pretty' },
  { flag: 'format', kind: 'choice', choices: ['raw', 'k8s-audit', 'auto'], default: 'raw', group: 'Kubernetes audit', reload: 'encoders', description: 'raw | k8s-audit (event time, stage and identity in the header) | auto (k8s-audit for Event lines, raw otherwise)' },
  { flag: 'sd-id', kind: 'string', default: DEFAULT_SD_ID, group: 'Kubernetes audit', reload: 'encoders', requires: 'format k8s-audit or auto', description: 'SD-ID of the audit structured data, name@<private enterprise number>' },
  { flag: 'select', kind: 'list', group: 'Kubernetes audit', reload: 'encoders', requires: 'format k8s-audit or auto', description: "Forward only events matching, kubectl -l syntax: 'verb in (create,delete),objectRef.resource=secrets' (repeatable: OR)" },
  { flag: 'exclude', kind: 'list', group: 'Kubernetes audit', reload: 'encoders', requires: 'format k8s-audit or auto', description: "Drop events matching, e.g. 'user.username=system:kube-proxy' (repeatable: OR)" },
  { flag: 'dedupe', kind: 'boolean', group: 'Kubernetes audit', reload: 'encoders', requires: 'format k8s-audit or auto', description: 'Drop an event whose (auditID, stage) was forwarded within the dedupe window' },
  // Measured: 5 MiB of heap when full (100,000 parsed auditIDs).
  { flag: 'dedupe-max-entries', kind: 'integer', default: 100_000, min: 1, max: 10_000_000, group: 'Kubernetes audit', reload: 'encoders', requires: 'dedupe', description: '(auditID, stage) pairs remembered' },
  { flag: 'dedupe-window', kind: 'duration', default: '5m', min: 1, group: 'Kubernetes audit', reload: 'encoders', requires: 'dedupe', description: 'How long a pair is remembered' },
  { flag: 'listen-webhook', kind: 'string', group: 'Kubernetes audit', description: "Serve kube-apiserver's audit webhook on HOST:PORT (POST /k8s-audit or /k8s_audit)" },
  { flag: 'webhook-tls-cert', kind: 'string', group: 'Kubernetes audit', requires: 'listen-webhook', description: 'PEM certificate (chain) for the webhook listener; with --webhook-tls-key' },
  { flag: 'webhook-tls-key', kind: 'string', group: 'Kubernetes audit', requires: 'listen-webhook', description: 'PEM private key for the webhook listener' },
  { flag: 'webhook-token-file', kind: 'string', group: 'Kubernetes audit', requires: 'listen-webhook', secret: true, description: 'File holding the bearer token webhook requests must carry' },
  // Falco's limits for the same endpoint.
  { flag: 'webhook-max-request-bytes', kind: 'size', default: '12MiB', min: 1024, max: GiB, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Larger requests get 413' },
  { flag: 'webhook-max-event-bytes', kind: 'size', default: '256KiB', min: 1024, rangeText: '1024 bytes to --webhook-max-request-bytes', group: 'Kubernetes audit', requires: 'listen-webhook', description: 'A request with a larger event gets 413' },
  // Below kube-apiserver's own wait for an answer, so that the 503 is seen and retried.
  { flag: 'webhook-timeout', kind: 'duration', default: '30s', min: 100, max: 600_000, group: 'Kubernetes audit', requires: 'listen-webhook', description: "How long a request waits for its events to be on the drain's socket or fsynced in the spill before 503" },
  // With a 16 MiB --memory-max-bytes (4 MiB of slab memory since) and node's own ~45 MB, under 128 MB RSS with the webhook flooded (README).
  { flag: 'webhook-max-inflight-bytes', kind: 'size', default: '32MiB', max: 16 * GiB, rangeText: '--webhook-max-request-bytes to 16GiB', group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Bytes all webhook requests in flight may hold together; beyond, 429 + Retry-After' },
  // Each held event costs a frame header and bookkeeping besides its bytes: a flood of tiny events is bounded too.
  { flag: 'webhook-max-inflight-events', kind: 'integer', default: 100_000, min: 1, max: 100_000_000, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Events all webhook requests in flight may hold together; beyond, 429 + Retry-After' },
  { flag: 'webhook-max-depth', kind: 'integer', default: 100, min: 4, max: 1000, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'A request nesting JSON deeper gets 400' },
  { flag: 'webhook-body-timeout', kind: 'duration', default: '10s', min: 100, max: 600_000, group: 'Kubernetes audit', requires: 'listen-webhook', description: "Longest wait for a request body's first byte, and longest pause in it; then 408" },
  { flag: 'webhook-min-body-rate', kind: 'size', default: '32KiB', min: 1, max: GiB, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Bytes per second a request body must keep up on average after --webhook-body-timeout; then 408' },
  { flag: 'webhook-max-connections-per-client', kind: 'integer', default: 32, min: 1, max: 65535, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Open webhook connections per client address; more are closed at once' },
  { flag: 'webhook-max-requests-per-client', kind: 'integer', default: 8, min: 1, max: MAX_INFLIGHT_REQUESTS, group: 'Kubernetes audit', requires: 'listen-webhook', description: 'Webhook requests in flight per client address; more get 429 + Retry-After' },
  { flag: 'max-files', kind: 'integer', default: 1024, min: 1, max: 1_000_000, group: 'Input', description: 'At most this many files are followed at once' },
  { flag: 'rotate-wait', kind: 'duration', default: '5s', min: 0, group: 'Input', description: 'How long a rotated file is still read after its last write' },
  { flag: 'glob-rescan-interval', kind: 'duration', default: '1s', min: 10, group: 'Input', description: 'How often --file globs are expanded again to find new matches' },
  { flag: 'forget-after', kind: 'duration', default: '5m', min: 0, group: 'Input', description: 'A glob match gone (deleted, not recreated) this long stops being followed' },
  { flag: 'tls', kind: 'boolean', group: 'TLS', reload: 'sink', description: 'TLS to the drain (RFC 5425), as --to tls://host:port does' },
  { flag: 'ca', kind: 'string', group: 'TLS', defaultText: 'the system trust store', reload: 'sink', description: "PEM bundle of CAs the drain's certificate must chain to" },
  { flag: 'cert', kind: 'string', group: 'TLS', reload: 'sink', description: 'PEM client certificate for mutual TLS (re-read on SIGHUP)' },
  { flag: 'key', kind: 'string', group: 'TLS', reload: 'sink', requires: 'cert', description: 'PEM private key of --cert (re-read on SIGHUP)' },
  { flag: 'key-passphrase-file', kind: 'string', group: 'TLS', reload: 'sink', requires: 'key', secret: true, description: `File holding --key's passphrase (or set ${PASSPHRASE_ENV})` },
  { flag: 'servername', kind: 'string', group: 'TLS', defaultText: 'the --to host', reload: 'sink', description: 'Name sent as SNI and checked against the drain certificate' },
  { flag: 'fingerprint', kind: 'list', group: 'TLS', reload: 'sink', description: 'Accept only a drain certificate with this SHA-256 fingerprint (sha256:AB:CD:…; repeatable) instead of CA verification' },
  { flag: 'tls-insecure-skip-verify', kind: 'boolean', group: 'TLS', reload: 'sink', description: "DANGEROUS: do not verify the drain's certificate (warned at every connect)" },
  { flag: 'buffer-dir', kind: 'string', group: 'Buffering', defaultText: '<state-dir>/spill; stdin alone spills only with --state-dir or --buffer-dir', description: 'Where lines wait on disk while the drain is slow or away (and the --tcp-resend-window file)' },
  // Hours of a busy API server's audit log (~100-300 KB/s); small next to a node's disk.
  { flag: 'buffer-max-bytes', kind: 'size', default: '1GiB', min: MiB, group: 'Buffering', description: 'Bound of the disk spill' },
  { flag: 'when-full', kind: 'choice', choices: ['block', 'drop-oldest', 'drop-newest'], default: 'block', group: 'Buffering', description: 'When the spill is full: block (stop reading) | drop-oldest | drop-newest' },
  { flag: 'spill-fsync-interval', kind: 'duration', default: '1s', min: 10, group: 'Buffering', description: 'How often spilled lines are fsynced, and how long lines wait in memory for the drain before they are spilled' },
  { flag: 'exit-timeout', kind: 'duration', default: '30s', min: 0, group: 'Buffering', description: 'At the end of stdin or --once, how long the drain gets to take the rest; then it stays in the spill (or, without one, is counted as not delivered) and the exit code is 75' },
] as const satisfies readonly Setting[];

export const SETTINGS: readonly Setting[] = TABLE;

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type RawValue<K extends Kind> = K extends 'boolean' ? boolean : K extends 'list' ? string[] : K extends 'string' | 'choice' ? string : string | number;
type Row = (typeof TABLE)[number];

/** The settings as given (flags, config file), all still unparsed, by camelCase name. */
export type RawSettings = { [S in Row as S extends { fileKey: null } ? never : Camel<S['flag']>]?: RawValue<S['kind']> };

export const camel = (flag: string) => flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

const BY_FLAG = new Map(SETTINGS.map((s) => [s.flag, s]));

export function setting(flag: string): Setting {
  const s = BY_FLAG.get(flag);
  if (!s) throw new Error(`no setting --${flag}`);
  return s;
}

/** Each default as a config file would give it, by RawSettings key. */
export const DEFAULTS: Readonly<Record<string, string | number>> = Object.fromEntries(
  SETTINGS.filter((s) => s.default !== undefined).map((s) => [camel(s.flag), s.default!]),
);

/** A size or duration setting's default in bytes or ms, or an integer's: for modules that take the value as an option. */
export function defaultNumber(flag: string): number {
  const s = setting(flag);
  const n = s.kind === 'duration' ? parseDuration(s.default!) : s.kind === 'size' ? parseSize(s.default!) : Number(s.default);
  if (n === undefined || !Number.isFinite(n)) throw new Error(`--${flag} has no numeric default`);
  return n;
}

/** The config-file key of a flag, or undefined for flags that mean nothing in a file. */
export const fileKeyOf = (s: Setting): string | undefined => (s.fileKey === null ? undefined : (s.fileKey ?? s.flag.replace(/-/g, '_')));

/** The RawSettings keys SIGHUP applies, by how (ops/reload.ts). */
export function reloadKeys(how: NonNullable<Setting['reload']>): string[] {
  return SETTINGS.filter((s) => s.reload === how).map((s) => camel(s.flag));
}
