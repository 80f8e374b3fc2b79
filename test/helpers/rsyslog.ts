import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from './net.js';
import { tiedToTest } from './proc.js';

export const RSYSLOGD = '/usr/sbin/rsyslogd';
export const RSYSLOG_MODULES = '/usr/lib/x86_64-linux-gnu/rsyslog';

/** Why a test needing rsyslogd with `modules` cannot run here (which Debian package is missing), or undefined. */
export function rsyslogMissing(modules: Record<string, string> = {}): string | undefined {
  if (!existsSync(RSYSLOGD)) return `${RSYSLOGD} not found (Debian package rsyslog)`;
  for (const [mod, pkg] of Object.entries(modules)) {
    if (!existsSync(join(RSYSLOG_MODULES, `${mod}.so`))) return `rsyslog module ${mod} not found (Debian package ${pkg})`;
  }
  return undefined;
}

export interface RsyslogOptions {
  /**
   * The input statement(s), given the port to listen on, e.g.
   * (port) => `input(type="imrelp" port="${port}" address="127.0.0.1")`. Inputs must name ruleset "out".
   */
  inputs: (port: number) => string;
  /** module(load=...) lines the inputs need. */
  modules: string[];
  /** Written for each message to the output file; default: the MSG part and LF. */
  template?: string;
  /** Extra global() parameters. */
  global?: string;
}

interface TestLike {
  teardown(fn: () => unknown): void;
}

/**
 * A real rsyslogd for interoperability tests, in its own folder with its own config, listening on
 * 127.0.0.1 and writing each message it accepts to `outFile`.
 *
 * Its main queue is Direct and omfile writes synchronously: the input's submit returns only after
 * the line was written to the file. With that, what rsyslog acknowledges (RELP) has been written,
 * and a `kill -9` loses nothing it acknowledged. The I/O buffer holds the largest message, so each
 * line is one write(2) and a kill never leaves half a line.
 */
export class Rsyslog {
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> = Promise.resolve();
  private stderr = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly conf: string,
  ) {}

  get outFile(): string {
    return join(this.dir, 'out.log');
  }

  static async start(t: TestLike, opts: RsyslogOptions): Promise<Rsyslog> {
    const dir = mkdtempSync(join(tmpdir(), 'auditfwd-rsyslog-'));
    mkdirSync(join(dir, 'work'));
    const port = await freePort();
    const conf = join(dir, 'rsyslog.conf');
    const template = opts.template ?? '%msg%\\n';
    writeFileSync(
      conf,
      [
        `global(workDirectory="${dir}/work" maxMessageSize="256k" ${opts.global ?? ''})`,
        // Direct: a message is processed in the input's own thread, before the input acknowledges it.
        `main_queue(queue.type="Direct")`,
        ...opts.modules.map((m) => `module(load="${m}")`),
        `template(name="out" type="string" string="${template}")`,
        `ruleset(name="out") {`,
        `  action(type="omfile" file="${dir}/out.log" template="out" asyncWriting="off" flushOnTXEnd="on" ioBufferSize="256k")`,
        `}`,
        opts.inputs(port),
        '',
      ].join('\n'),
    );
    const r = new Rsyslog(dir, port, conf);
    t.teardown(async () => {
      await r.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await r.launch();
    return r;
  }

  /** Starts rsyslogd (again, on the same port) and resolves once it accepts connections. */
  async launch(): Promise<void> {
    if (this.running) throw new Error('rsyslogd is already running');
    const child = spawn(...tiedToTest(RSYSLOGD, ['-n', '-f', this.conf, '-i', join(this.dir, 'rsyslogd.pid')]), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = once(child, 'exit');
    const deadline = Date.now() + 15_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`rsyslogd exited with ${child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`rsyslogd did not listen on ${this.port} within 15 s: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20)); // polling for the listener: rsyslogd has no readiness signal
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** kill -9: no chance to flush or close anything. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }

  log(): string {
    return this.stderr;
  }

  /** The output file's lines so far (without a trailing partial line). */
  lines(): string[] {
    if (!existsSync(this.outFile)) return [];
    const text = readFileSync(this.outFile, 'utf8');
    const lines = text.split('\n');
    lines.pop();
    return lines;
  }
}

export { freePort } from './net.js';
