import { readFileSync } from 'node:fs';
import { SpillError } from './buffer/spill/io.js';
import { resolveConfig, type Config } from './config/config.js';
import { helpText, parseArgv, UsageError, type Argv } from './config/argv.js';
import { ConfigError } from './config/errors.js';
import { capErrors, effectiveYaml, loadConfigFile, mergeUnderFlags, OPTION_TABLE, resolveCollecting, type FileSettings, type OptionTable } from './config/file.js';
import { camel, SETTINGS, type RawSettings } from './config/options.js';
import { preflight } from './config/preflight.js';
import { createLogger } from './telemetry/log.js';
import { Reloader } from './ops/reload.js';
import { Pipeline } from './pipeline.js';
import { emptyNodeDefaultStore } from './sinks/system-trust.js';
import { StateError } from './state/checkpoints.js';
import { stdoutFraming, TERMINAL_NOTE } from './sinks/stream.js';

/** How long after --shutdown-timeout a stop may still take before the process exits regardless. */
const STOP_BACKSTOP_MS = 10_000;

const EXIT_USAGE = 2;

/** How long a finished run may wait for Node to end it by itself before process.exit() ends it. */
const EXIT_BACKSTOP_MS = 2_000;

/**
 * Ends a run that finished: by returning to the event loop, not by process.exit(). On Node 24,
 * process.exit() joins V8's worker threads while the isolate is still alive, and a worker that waits
 * for a garbage collection (a background compile allocating) waits for the main thread forever
 * (nodejs/node#54918): the process logged "all input delivered" and never ended (gdb: the main
 * thread in pthread_join, a V8Worker in AwaitCollectionBackground; 3 of 16 test processes under
 * load). A process ending by itself tears the isolate down first, which releases such a worker.
 * Something left open would hold it: process.exit() after EXIT_BACKSTOP_MS is the backstop.
 */
function exitWhenDone(code: number): void {
  process.exitCode = code;
  process.stdin.destroy();
  setTimeout(() => process.exit(code), EXIT_BACKSTOP_MS).unref();
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usageError(...messages: string[]): never {
  for (const message of messages) process.stderr.write(`auditfwd: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(EXIT_USAGE);
}

function readFlags(argv: string[]): Argv {
  try {
    return parseArgv(argv);
  } catch (err) {
    if (err instanceof UsageError) usageError(err.message);
    throw err;
  }
}

function parseArgs(argv: string[], ctx: Partial<Settings> = {}): RawSettings {
  const flags = readFlags(argv);
  if (flags.help) {
    process.stdout.write(helpText(Math.min(120, process.stdout.columns || 120)));
    process.exit(0);
  }
  if (flags.version) {
    process.stdout.write(`${version()}\n`);
    process.exit(0);
  }
  const parsed = withConfigFile(flags, OPTION_TABLE, ctx);
  const pick = (v: unknown) => (Array.isArray(v) ? v[v.length - 1] : v);
  const raw: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    if (s.fileKey === null) continue;
    const key = camel(s.flag);
    raw[key] = s.kind === 'list' ? parsed[key] : pick(parsed[key]);
  }
  return raw as RawSettings;
}

/** What the command line and the config file said, and what was wrong with the file. */
export interface Settings {
  raw: RawSettings;
  options: OptionTable;
  file?: FileSettings;
  checkConfig: boolean;
}

function withConfigFile<T extends Record<string, unknown> & { config?: unknown; checkConfig?: unknown }>(parsed: T, options: OptionTable, ctx: Partial<Settings>): T {
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
  emptyNodeDefaultStore();
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
  const stop = (): void => {
    pipeline.stop();
    // The last resort, should a part never finish: positions cover only what was handed on, so
    // exiting loses nothing, while a stop that hangs holds up systemd, BOSH and a restart.
    const backstopMs = pipeline.settings.shutdownTimeoutMs + STOP_BACKSTOP_MS;
    setTimeout(() => {
      log.error({ waitedMs: backstopMs }, 'shutdown did not finish; exiting now (what was not handed on is read again at the next start)');
      process.exit(1);
    }, backstopMs).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
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
  exitWhenDone(pipeline.exitCode);
}
