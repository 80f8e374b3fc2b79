import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SETPRIV = '/usr/bin/setpriv';

/**
 * `cmd args` run so that it dies with the test process, however that ends. A teardown kills a
 * child when the test ends, but tap kills a test file that outlives its timeout, and then no
 * teardown runs: its auditfwd went on writing into folders that later runs used. The kernel's
 * parent-death signal (util-linux `setpriv`, in every Debian) does not depend on the test process
 * running any code. The pid stays the command's own: setpriv and env exec it.
 */
export function tiedToTest(cmd: string, args: string[]): [string, string[]] {
  return existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
}

export const BIN = fileURLToPath(new URL('../../bin/auditfwd', import.meta.url));

/** How long waitForLog waits by default: within a test file's 120 s, so that a hang is reported with the log. */
const WAIT_FOR_LOG_MS = 60_000;

export interface Run {
  child: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once its output is read to the end. */
  exited: Promise<number | string>;
  /**
   * Resolves when stderr has a log line matching `re`. Rejects, with the end of stderr, when the
   * process ends first or `withinMs` pass: a test that hung here said nothing of why.
   */
  waitForLog: (re: RegExp, withinMs?: number) => Promise<void>;
}

interface TestLike {
  teardown(fn: () => unknown): void;
}

/** Runs bin/auditfwd; the test's teardown kills it if it is still running. */
export function runAuditfwd(t: TestLike, args: string[], opts: { stdin?: Buffer | string | 'pipe'; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; nodeOptions?: string } = {}): Run {
  // The test runner re-injects its loaders (NODE_OPTIONS) into every child; `env -u` keeps the
  // real process clean of them (`nodeOptions`: a test's own, such as a probe to --require).
  const nodeOptions = opts.nodeOptions === undefined ? [] : [`NODE_OPTIONS=${opts.nodeOptions}`];
  const child = spawn(...tiedToTest('env', ['-u', 'NODE_OPTIONS', ...nodeOptions, BIN, ...args]), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cleanEnv(opts.env),
    uid: opts.uid,
    gid: opts.gid,
  });
  const out: Buffer[] = [];
  let err = '';
  const logWaiters: Array<{ re: RegExp; resolve: () => void }> = [];
  let ended = false;
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of logWaiters.splice(0)) {
      if (w.re.test(err)) w.resolve();
      else logWaiters.push(w);
    }
  });
  child.stdin!.on('error', () => {});
  if (opts.stdin !== 'pipe') child.stdin!.end(opts.stdin ?? '');
  // 'close', not 'exit': stdout and stderr are then read to their end.
  const exited = once(child, 'close').then(([code, signal]) => {
    ended = true;
    return (code ?? signal) as number | string;
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited,
    waitForLog: (re, withinMs = WAIT_FOR_LOG_MS) => {
      if (re.test(err)) return Promise.resolve();
      const fail = (why: string) => new Error(`auditfwd ${why} before logging ${re}; its stderr ends:\n${err.slice(-3000)}`);
      if (ended) return Promise.reject(fail('had ended'));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(fail(`ran ${withinMs} ms`)), withinMs);
        const waiter = {
          re,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        logWaiters.push(waiter);
        void exited.then((code) => {
          if (!logWaiters.includes(waiter)) return;
          clearTimeout(timer);
          reject(fail(`exited (${code})`));
        });
      });
    },
  };
}

/** The test runner's loaders (NODE_OPTIONS) must not reach the real process. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('_TAPJS') || k === 'NODE_V8_COVERAGE') delete env[k];
  return env;
}

/** A bad invocation: exit 2 and one line on stderr matching `re`, never a stack trace. */
export async function usageError(t: Tap.Test, args: string[], re: RegExp, opts: Parameters<typeof runAuditfwd>[2] = {}): Promise<void> {
  const run = runAuditfwd(t, args, opts);
  t.equal(await run.exited, 2, `exit 2 for ${args.join(' ')}`);
  const lines = run.stderr().trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], re);
  t.notMatch(run.stderr(), /\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}
