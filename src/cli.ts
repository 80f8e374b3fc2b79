import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { SpillError } from './buffer/spill/io.js';
import { ConfigError, DEFAULTS, resolveConfig, type Config, type RawSettings } from './config/config.js';
import { capErrors, effectiveYaml, loadConfigFile, mergeUnderFlags, resolveCollecting, type FileSettings, type OptionTable } from './config/file.js';
import { K8S_DEFAULTS } from './config/k8s-config.js';
import { preflight } from './config/preflight.js';
import { PASSPHRASE_ENV } from './config/tls-settings.js';
import { createLogger } from './telemetry/log.js';
import { Reloader } from './ops/reload.js';
import { Pipeline } from './pipeline.js';
import { StateError } from './state/checkpoints.js';
import { stdoutFraming, TERMINAL_NOTE } from './sinks/stream.js';

const EXIT_USAGE = 2;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usageError(...messages: string[]): never {
  for (const message of messages) process.stderr.write(`auditfwd: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(EXIT_USAGE);
}

/**
 * yargs reads a lone "-" as a positional, and "-1s" as the short flags -1 and -s, not as the value of
 * the flag before it. Joined to their flag, they reach the validators (which say what is wrong).
 */
function joinDashValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if ((next === '-' || /^-\d/.test(next ?? '')) && /^--?[a-z]/.test(argv[i]) && !argv[i].includes('=')) out.push(`${argv[i]}=${next}`), i++;
    else out.push(argv[i]);
  }
  return out;
}

function parseArgs(argv: string[], ctx: Partial<Settings> = {}): RawSettings {
  const parser = yargs(joinDashValues(argv))
    .scriptName('auditfwd')
    .usage('auditfwd --file PATH --to HOST:PORT [options]\ncat audit.log | auditfwd --to HOST:PORT')
    .parserConfiguration({ 'strip-aliased': true, 'strip-dashed': true })
    .option('file', { alias: 'f', type: 'string', array: true, description: 'File to follow (repeatable); - is stdin. Without --file, stdin is read' })
    .option('to', { alias: 't', type: 'string', description: 'Drain: host:port, tcp://host:port, [::1]:port, or - for stdout' })
    .option('state-dir', { type: 'string', description: 'Where read positions are kept (default: $STATE_DIRECTORY, /var/lib/auditfwd for root, else ~/.local/state/auditfwd)' })
    .option('start-at', { type: 'string', description: `Where a file never seen before starts: beginning|end (default ${DEFAULTS.startAt})` })
    .option('framing', { type: 'string', description: `octet-counting (RFC 6587) | lf (default ${DEFAULTS.framing})` })
    .option('facility', { type: 'string', description: `Syslog facility name or 0-23 (default ${DEFAULTS.facility})` })
    .option('severity', { type: 'string', description: `Syslog severity name or 0-7 (default ${DEFAULTS.severity})` })
    .option('hostname', { type: 'string', description: 'HOSTNAME field (default: this machine\'s name)' })
    .option('app-name', { type: 'string', description: 'APP-NAME field (default: the file\'s parent folder name; auditfwd for stdin)' })
    .option('max-message-bytes', { type: 'string', description: `Longer messages are truncated with a marker (default ${DEFAULTS.maxMessageBytes}, at most 64MiB)` })
    .option('memory-max-bytes', { type: 'string', description: `Bytes held in memory between reading and the drain (default ${DEFAULTS.memoryMaxBytes})` })
    .option('once', { type: 'boolean', description: 'Read the files to their current end, deliver everything, exit' })
    .option('ignore-positions', { type: 'boolean', description: 'Do not use the saved read positions: every file starts at --start-at (e.g. to send a file with --once again); positions are saved anew' })
    .option('log-level', { type: 'string', description: `fatal|error|warn|info|debug|trace|silent (default ${DEFAULTS.logLevel})` })
    .option('poll-interval', { type: 'string', description: `Stat poll behind filesystem events (default ${DEFAULTS.pollInterval})` })
    .option('checkpoint-interval', { type: 'string', description: `How often read positions are saved (default ${DEFAULTS.checkpointInterval})` })
    .option('reconnect-max-delay', { type: 'string', description: `Cap of the reconnect backoff (default ${DEFAULTS.reconnectMaxDelay})` })
    .option('shutdown-timeout', { type: 'string', description: `On SIGTERM/SIGINT, how long to keep sending what was read (default ${DEFAULTS.shutdownTimeout})` })
    .option('relp-window', { type: 'string', description: `relp://: messages sent and not yet acknowledged, at most (default ${DEFAULTS.relpWindow})` })
    .option('relp-ack-timeout', { type: 'string', description: `relp://: with messages in flight, a drain silent this long is reconnected (default ${DEFAULTS.relpAckTimeout})` })
    .option('relp-max-refusals', { type: 'string', description: `relp://: a message the drain refuses this many times is dropped and counted (default ${DEFAULTS.relpMaxRefusals})` })
    .option('config', { alias: 'c', type: 'string', description: 'YAML (or JSON) file with any of these settings (state-dir → state_dir); flags override it; SIGHUP re-reads it' })
    .option('check-config', { type: 'boolean', description: 'Validate the settings, load every file they name, check the state and spill folders, print the effective configuration (secrets redacted), exit' })
    .option('sd-element', { type: 'string', array: true, description: 'Structured data added to every message, e.g. \'instance@47450 az=z1 id="a b"\' (repeatable)' })
    .option('metrics-listen', { type: 'string', description: 'HOST:PORT serving /metrics (Prometheus), /healthz and /readyz (default: off)' })
    .option('unhealthy-after', { type: 'string', description: `/healthz turns 503 once the drain is unreachable or the buffer full this long (default ${DEFAULTS.unhealthyAfter})` })
    .option('log-format', { type: 'string', description: `auto (readable on a terminal, else JSON) | json | pretty (default ${DEFAULTS.logFormat})` })
    .option('format', { type: 'string', description: `raw | k8s-audit (event time, stage and identity in the header) | auto (k8s-audit for Event lines, raw otherwise) (default ${K8S_DEFAULTS.format})` })
    .option('sd-id', { type: 'string', description: `SD-ID of the audit structured data, name@<private enterprise number> (default ${K8S_DEFAULTS.sdId})` })
    .option('select', { type: 'string', array: true, description: "Forward only events matching, kubectl -l syntax: 'verb in (create,delete),objectRef.resource=secrets' (repeatable: OR)" })
    .option('exclude', { type: 'string', array: true, description: "Drop events matching, e.g. 'user.username=system:kube-proxy' (repeatable: OR)" })
    .option('dedupe', { type: 'boolean', description: 'Drop an event whose (auditID, stage) was forwarded within the dedupe window' })
    .option('dedupe-max-entries', { type: 'string', description: `(auditID, stage) pairs remembered (default ${K8S_DEFAULTS.dedupeMaxEntries})` })
    .option('dedupe-window', { type: 'string', description: `How long a pair is remembered (default ${K8S_DEFAULTS.dedupeWindow})` })
    .option('listen-webhook', { type: 'string', description: 'Serve kube-apiserver\'s audit webhook on HOST:PORT (POST /k8s-audit or /k8s_audit)' })
    .option('webhook-tls-cert', { type: 'string', description: 'PEM certificate (chain) for the webhook listener; with --webhook-tls-key' })
    .option('webhook-tls-key', { type: 'string', description: 'PEM private key for the webhook listener' })
    .option('webhook-token-file', { type: 'string', description: 'File holding the bearer token webhook requests must carry' })
    .option('webhook-max-request-bytes', { type: 'string', description: `Larger requests get 413 (default ${K8S_DEFAULTS.webhookMaxRequestBytes})` })
    .option('webhook-max-event-bytes', { type: 'string', description: `A request with a larger event gets 413 (default ${K8S_DEFAULTS.webhookMaxEventBytes})` })
    .option('webhook-timeout', { type: 'string', description: `How long a request waits for its events to be on the drain's socket or fsynced in the spill before 503 (default ${K8S_DEFAULTS.webhookTimeout})` })
    .option('webhook-max-inflight-bytes', { type: 'string', description: `Bytes all webhook requests in flight may hold together; beyond, 429 + Retry-After (default ${K8S_DEFAULTS.webhookMaxInflightBytes}, at least --webhook-max-request-bytes)` })
    .option('webhook-max-inflight-events', { type: 'string', description: `Events all webhook requests in flight may hold together; beyond, 429 + Retry-After (default ${K8S_DEFAULTS.webhookMaxInflightEvents})` })
    .option('webhook-max-depth', { type: 'string', description: `A request nesting JSON deeper gets 400 (default ${K8S_DEFAULTS.webhookMaxDepth})` })
    .option('webhook-body-timeout', { type: 'string', description: `Longest wait for a request body's first byte, and longest pause in it; then 408 (default ${K8S_DEFAULTS.webhookBodyTimeout})` })
    .option('webhook-min-body-rate', { type: 'string', description: `Bytes per second a request body must keep up on average after --webhook-body-timeout; then 408 (default ${K8S_DEFAULTS.webhookMinBodyRate})` })
    .option('webhook-max-connections-per-client', { type: 'string', description: `Open webhook connections per client address; more are closed at once (default ${K8S_DEFAULTS.webhookMaxConnectionsPerClient})` })
    .option('webhook-max-requests-per-client', { type: 'string', description: `Webhook requests in flight per client address; more get 429 + Retry-After (default ${K8S_DEFAULTS.webhookMaxRequestsPerClient})` })
    .option('max-files', { type: 'string', description: `At most this many files are followed at once (default ${DEFAULTS.maxFiles})` })
    .option('rotate-wait', { type: 'string', description: `How long a rotated file is still read after its last write (default ${DEFAULTS.rotateWait})` })
    .option('glob-rescan-interval', { type: 'string', description: `How often --file globs are expanded again to find new matches (default ${DEFAULTS.globRescanInterval})` })
    .option('forget-after', { type: 'string', description: `A glob match gone (deleted, not recreated) this long stops being followed (default ${DEFAULTS.forgetAfter})` })
    .option('tls', { type: 'boolean', description: 'TLS to the drain (RFC 5425), as --to tls://host:port does' })
    .option('ca', { type: 'string', description: 'PEM bundle of CAs the drain\'s certificate must chain to (default: the system trust store)' })
    .option('cert', { type: 'string', description: 'PEM client certificate for mutual TLS (re-read on SIGHUP)' })
    .option('key', { type: 'string', description: 'PEM private key of --cert (re-read on SIGHUP)' })
    .option('key-passphrase-file', { type: 'string', description: `File holding --key's passphrase (or set ${PASSPHRASE_ENV})` })
    .option('servername', { type: 'string', description: 'Name sent as SNI and checked against the drain certificate (default: the --to host)' })
    .option('fingerprint', { type: 'string', array: true, description: 'Accept only a drain certificate with this SHA-256 fingerprint (sha256:AB:CD:…; repeatable) instead of CA verification' })
    .option('tls-insecure-skip-verify', { type: 'boolean', description: 'DANGEROUS: do not verify the drain\'s certificate (warned at every connect)' })
    .option('buffer-dir', { type: 'string', description: 'Where lines wait on disk while the drain is slow or away (default: <state-dir>/spill; stdin alone spills only with --state-dir or --buffer-dir)' })
    .option('buffer-max-bytes', { type: 'string', description: `Bound of the disk spill (default ${DEFAULTS.bufferMaxBytes})` })
    .option('when-full', { type: 'string', description: `When the spill is full: block (stop reading) | drop-oldest | drop-newest (default ${DEFAULTS.whenFull})` })
    .option('spill-fsync-interval', { type: 'string', description: `How often spilled lines are fsynced, and how long lines wait in memory for the drain before they are spilled (default ${DEFAULTS.spillFsyncInterval})` })
    .option('exit-timeout', { type: 'string', description: `At the end of stdin or --once, how long the drain gets to take the rest; then it stays in the spill (or, without one, is counted as not delivered) and the exit code is 75 (default ${DEFAULTS.exitTimeout})` })
    .strict()
    .version(version())
    .help()
    .wrap(Math.min(120, process.stdout.columns || 120))
    .showHelpOnFail(false)
    .fail((msg, err) => {
      if (err) throw err;
      const unknown = /^Unknown arguments?: (.*)$/.exec(msg);
      usageError(unknown ? `unknown flag ${unknown[1].split(', ').map((a) => (a.length > 1 ? `--${a}` : `-${a}`)).join(', ')}` : msg);
    });
  const parsed = withConfigFile(parser.parseSync(), (parser as unknown as { getOptions(): OptionTable }).getOptions(), ctx);
  const pick = (v: unknown) => (Array.isArray(v) ? v[v.length - 1] : v);
  return {
    file: parsed.file as string[] | undefined,
    to: pick(parsed.to),
    stateDir: pick(parsed.stateDir),
    startAt: pick(parsed.startAt),
    framing: pick(parsed.framing),
    facility: pick(parsed.facility),
    severity: pick(parsed.severity),
    hostname: pick(parsed.hostname),
    appName: pick(parsed.appName),
    maxMessageBytes: pick(parsed.maxMessageBytes),
    memoryMaxBytes: pick(parsed.memoryMaxBytes),
    once: parsed.once,
    ignorePositions: parsed.ignorePositions,
    logLevel: pick(parsed.logLevel),
    pollInterval: pick(parsed.pollInterval),
    checkpointInterval: pick(parsed.checkpointInterval),
    reconnectMaxDelay: pick(parsed.reconnectMaxDelay),
    shutdownTimeout: pick(parsed.shutdownTimeout),
    relpWindow: pick(parsed.relpWindow),
    relpAckTimeout: pick(parsed.relpAckTimeout),
    relpMaxRefusals: pick(parsed.relpMaxRefusals),
    sdElement: parsed.sdElement as string[] | undefined,
    metricsListen: pick(parsed.metricsListen),
    unhealthyAfter: pick(parsed.unhealthyAfter),
    logFormat: pick(parsed.logFormat),
    format: pick(parsed.format),
    sdId: pick(parsed.sdId),
    select: parsed.select as string[] | undefined,
    exclude: parsed.exclude as string[] | undefined,
    dedupe: parsed.dedupe,
    dedupeMaxEntries: pick(parsed.dedupeMaxEntries),
    dedupeWindow: pick(parsed.dedupeWindow),
    listenWebhook: pick(parsed.listenWebhook),
    webhookTlsCert: pick(parsed.webhookTlsCert),
    webhookTlsKey: pick(parsed.webhookTlsKey),
    webhookTokenFile: pick(parsed.webhookTokenFile),
    webhookMaxRequestBytes: pick(parsed.webhookMaxRequestBytes),
    webhookMaxEventBytes: pick(parsed.webhookMaxEventBytes),
    webhookTimeout: pick(parsed.webhookTimeout),
    webhookMaxInflightBytes: pick(parsed.webhookMaxInflightBytes),
    webhookMaxInflightEvents: pick(parsed.webhookMaxInflightEvents),
    webhookMaxDepth: pick(parsed.webhookMaxDepth),
    webhookBodyTimeout: pick(parsed.webhookBodyTimeout),
    webhookMinBodyRate: pick(parsed.webhookMinBodyRate),
    webhookMaxConnectionsPerClient: pick(parsed.webhookMaxConnectionsPerClient),
    webhookMaxRequestsPerClient: pick(parsed.webhookMaxRequestsPerClient),
    maxFiles: pick(parsed.maxFiles),
    rotateWait: pick(parsed.rotateWait),
    globRescanInterval: pick(parsed.globRescanInterval),
    forgetAfter: pick(parsed.forgetAfter),
    tls: parsed.tls,
    ca: pick(parsed.ca),
    cert: pick(parsed.cert),
    key: pick(parsed.key),
    keyPassphraseFile: pick(parsed.keyPassphraseFile),
    servername: pick(parsed.servername),
    fingerprint: parsed.fingerprint as string[] | undefined,
    tlsInsecureSkipVerify: parsed.tlsInsecureSkipVerify,
    bufferDir: pick(parsed.bufferDir),
    bufferMaxBytes: pick(parsed.bufferMaxBytes),
    whenFull: pick(parsed.whenFull),
    spillFsyncInterval: pick(parsed.spillFsyncInterval),
    exitTimeout: pick(parsed.exitTimeout),
  };
}

/** What the command line and the config file said, and what was wrong with the file. */
export interface Settings {
  raw: RawSettings;
  options: OptionTable;
  file?: FileSettings;
  checkConfig: boolean;
}

function withConfigFile<T extends { config?: unknown; checkConfig?: unknown }>(parsed: T, options: OptionTable, ctx: Partial<Settings>): T {
  ctx.options = options;
  ctx.checkConfig = Boolean(parsed.checkConfig);
  const path = Array.isArray(parsed.config) ? parsed.config[parsed.config.length - 1] : parsed.config;
  if (typeof path === 'string') ctx.file = loadConfigFile(path, options);
  return mergeUnderFlags(parsed, ctx.file);
}

export function loadSettings(argv: string[]): Settings {
  const ctx: Partial<Settings> = {};
  const raw = parseArgs(argv, ctx);
  return { raw, options: ctx.options!, file: ctx.file, checkConfig: ctx.checkConfig ?? false };
}

/** Flags alone stop at the first error; with a config file every error is reported, each with its place. */
export function resolveSettings(s: Settings): { cfg?: Config; errors: string[] } {
  if (!s.file) {
    try {
      return { cfg: resolveConfig(s.raw), errors: [] };
    } catch (err) {
      if (err instanceof ConfigError) return { errors: [err.message] };
      throw err;
    }
  }
  if (s.file.unreadable) return { errors: s.file.errors };
  const r = resolveCollecting(s.raw as Record<string, unknown>, (raw) => resolveConfig(raw as RawSettings), s.file.where);
  // In file order: flags' errors first, then the file's by line.
  const line = (e: string) => (e.startsWith(`${s.file!.path}:`) ? Number(/^[^:]*:(\d+):/.exec(e.slice(s.file!.path.length))?.[1] ?? 0) : -1);
  const errors = capErrors(
    [...s.file.errors, ...r.errors].map((e, i) => ({ e, i, n: line(e) })).sort((a, b) => a.n - b.n || a.i - b.i).map((x) => x.e),
    s.file.path,
  );
  return errors.length ? { errors } : { cfg: r.cfg, errors };
}

/**
 * A fault nothing handled: one line (what, its code, where) and exit 70 (EX_SOFTWARE), never a
 * stack trace and never a half-working process; the service manager restarts it, and everything
 * not yet committed is read again.
 */
function onFatal(report: (fields: Record<string, unknown>, msg: string) => void): (err: unknown) => void {
  return (err) => {
    const e = err instanceof Error ? err : new Error(String(err));
    const at = e.stack?.split('\n').find((l) => /^\s+at /.test(l))?.trim();
    report({ err: e.message, code: (e as NodeJS.ErrnoException).code, at }, 'internal error; exiting');
    process.exit(70);
  };
}

/** Settings resolved with `--to -` on a terminal shown one message per line, said once on stderr (also across reloads). */
function onTerminal(resolve: typeof resolveSettings): typeof resolveSettings {
  let said = false;
  return (settings) => {
    const r = resolve(settings);
    if (r.cfg?.to.transport !== 'stdout' || settings.checkConfig) return r;
    const framing = stdoutFraming(r.cfg.framing, settings.raw.framing !== undefined, process.stdout.isTTY === true);
    if (framing !== r.cfg.framing && !said) {
      said = true;
      process.stderr.write(TERMINAL_NOTE);
    }
    return { ...r, cfg: { ...r.cfg, framing } };
  };
}

export async function main(argv: string[]): Promise<void> {
  // State, spill and temp files are the audit trail's positions and contents: never for other users.
  process.umask(0o077);
  const early = onFatal((f, msg) => process.stderr.write(`auditfwd: ${msg}: ${f.err}${f.code ? ` (${f.code})` : ''}\n`));
  process.on('uncaughtException', early);
  process.on('unhandledRejection', early);
  const settings = loadSettings(argv);
  const resolve = onTerminal(resolveSettings);
  const { cfg, errors } = resolve(settings);
  if (!cfg) usageError(...errors);
  // The same checks as a start makes (files read, folders writable), all reported; --check-config changes nothing on disk.
  const problems = await preflight(cfg, !settings.checkConfig);
  if (problems.length > 0) usageError(...capErrors(problems, settings.file?.path ?? 'auditfwd'));
  if (settings.checkConfig) {
    const from = settings.file ? `${settings.file.path} and flags` : 'flags';
    process.stdout.write(effectiveYaml(settings.options, settings.raw as Record<string, unknown>, cfg as unknown as Record<string, unknown>, from));
    process.exit(0);
  }
  const log = createLogger(cfg.logLevel, cfg.logFormat);
  process.off('uncaughtException', early).off('unhandledRejection', early);
  const fatal = onFatal((f, msg) => log.fatal(f, msg));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  const pipeline = new Pipeline(cfg, log, { stdin: process.stdin, stdout: process.stdout });
  let ops;
  if (cfg.metricsListen) {
    try {
      // Loaded only when asked for: prom-client costs 3 MB of RSS a forwarder without metrics does not need.
      const { startOpsServer } = await import('./ops/http.js');
      ops = await startOpsServer(cfg.metricsListen, pipeline, log);
    } catch (err) {
      usageError(`--metrics-listen: cannot listen on ${cfg.metricsListen.host}:${cfg.metricsListen.port} (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  const reloader = new Reloader(settings, () => loadSettings(argv), resolve, pipeline, log);
  process.on('SIGHUP', () => void reloader.reload());
  process.on('SIGTERM', () => pipeline.stop());
  process.on('SIGINT', () => pipeline.stop());
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    log.error({ code: err.code }, 'stdout closed');
    process.exit(1);
  });
  try {
    await pipeline.run();
    await ops?.close();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof SpillError || err instanceof StateError) usageError(err.message);
    log.fatal({ err }, 'auditfwd failed');
    process.exit(1);
  }
  process.exit(pipeline.exitCode);
}
