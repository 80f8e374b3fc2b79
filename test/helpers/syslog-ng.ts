import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from './net.js';
import { tiedToTest } from './proc.js';

/** Where .ci/install-syslog-ng unpacks syslog-ng-core (it conflicts with rsyslog as a package). */
export const SYSLOG_NG_ROOT = process.env.SYSLOG_NG_ROOT ?? '/opt/auditfwd-syslog-ng';
const BIN = join(SYSLOG_NG_ROOT, 'usr/sbin/syslog-ng');
const LIBS = join(SYSLOG_NG_ROOT, 'usr/lib/syslog-ng');
const MODULES = join(LIBS, '3.38');

export function syslogNgMissing(): string | undefined {
  if (!existsSync(BIN)) return `${BIN} not found (Debian package syslog-ng-core, unpacked by bash .ci/install-syslog-ng)`;
  if (!existsSync(join(MODULES, 'libsyslogformat.so'))) return `syslog-ng 3.38 modules not found in ${MODULES} (Debian package syslog-ng-core)`;
  return undefined;
}

/**
 * The fields syslog-ng parsed from each message, one JSON object per line. $ISODATE is rendered in
 * UTC with 6 fraction digits; the NILVALUE arrives as an empty value. `--key .SDATA.*` adds the SD
 * params as syslog-ng's own parser split them (key `_SDATA`).
 */
const TEMPLATE = '$(format-json --scope none pri=$PRI ts=$ISODATE host=$HOST app=$PROGRAM procid=$PID msgid=$MSGID sd=$SDATA msg=$MSG --key .SDATA.*)\\n';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/** A real syslog-ng with its syslog() source (RFC 5424 over TCP, octet counting) in its own folder. */
export class SyslogNg {
  private child: ChildProcess | undefined;
  private exited: Promise<unknown> = Promise.resolve();
  private stderr = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get outFile(): string {
    return join(this.dir, 'out.log');
  }

  /** `maxMessageSize: 'stock'` leaves syslog-ng's log-msg-size() at its default (64 KiB). */
  static async start(t: TestLike, opts: { maxMessageSize?: number | 'stock' } = {}): Promise<SyslogNg> {
    const dir = mkdtempSync(join(tmpdir(), 'auditfwd-syslog-ng-'));
    const port = await freePort();
    const size = opts.maxMessageSize ?? 1024 * 1024;
    const msgSize = size === 'stock' ? '' : ` log-msg-size(${size})`;
    const s = new SyslogNg(dir, port);
    writeFileSync(
      join(dir, 'syslog-ng.conf'),
      [
        '@version: 3.38',
        // keep-hostname: HOSTNAME from the message, not the peer's address.
        `options { keep-hostname(yes); use-dns(no); use-fqdn(no); chain-hostnames(no); frac-digits(6);${msgSize && msgSize + ';'} stats-freq(0); };`,
        `source s { syslog(ip("127.0.0.1") port(${port}) transport("tcp")${msgSize}); };`,
        `destination d { file("${s.outFile}" time-zone("UTC") template("${TEMPLATE}")); };`,
        'log { source(s); destination(d); };',
        '',
      ].join('\n'),
    );
    t.teardown(async () => {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await s.launch();
    return s;
  }

  private async launch(): Promise<void> {
    const d = this.dir;
    const args = ['-F', '-f', join(d, 'syslog-ng.conf'), `--module-path=${MODULES}`, `--persist-file=${join(d, 'persist')}`, `--pidfile=${join(d, 'pid')}`, `--control=${join(d, 'ctl')}`];
    const child = spawn(...tiedToTest(BIN, args), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LD_LIBRARY_PATH: LIBS } });
    this.child = child;
    child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = once(child, 'exit');
    const deadline = Date.now() + 15_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`syslog-ng exited with ${child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`syslog-ng did not listen on ${this.port} within 15 s: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20)); // polling for the listener: there is no readiness signal
    }
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  log(): string {
    return this.stderr;
  }
}
