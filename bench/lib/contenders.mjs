import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { RSYSLOGD, rsyslogForwarder } from './rsyslog.mjs';
import { SYSLOG_NG, syslogNgForwarder } from './syslog-ng.mjs';

/** What this build of auditfwd can do, read from its --help. */
export function detectFeatures(bin) {
  let help = '';
  try {
    help = execFileSync('node', [bin, '--help'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  } catch (err) {
    help = String(err.stdout ?? '');
  }
  // The TLS flag naming the CA that signs the drain's certificate, whatever it ends up called.
  const caFlag = /--(tls-ca-file|tls-ca|ca-file|ca)\b/.exec(help)?.[0];
  return {
    format: /--format\b/.test(help) && /k8s-audit/.test(help),
    tls: /tls:\/\//.test(help) && caFlag !== undefined,
    caFlag,
    relp: /relp:\/\//.test(help),
    help,
  };
}

// Run as installed (bin/auditfwd's #! line, with its node flags), not as `node bin/auditfwd`.
const auditfwd = (bin, extra) => (ctx) => ({
  cmd: bin,
  args: [...(ctx.follow ? [] : ['--once']), '--file', ctx.file, '--state-dir', join(ctx.dir, 'state'), '--log-level', 'warn', ...extra(ctx)],
  selfExits: !ctx.follow,
});

/**
 * The contenders, in table order. Each names the receiver it needs (transport, and what to count)
 * and whether it can run here; `follow` marks those that also take part in the latency and
 * dead-drain runs. To enable a contender whose detection fails, set its `enabled` to true.
 */
export function contenders(bin, f) {
  return [
    {
      name: 'floor: cat > /dev/tcp',
      enabled: true,
      receiver: { transport: 'tcp', count: 'bytes', followCount: 'lines' },
      follow: true,
      start: (ctx) =>
        ctx.follow
          ? { cmd: 'bash', args: ['-c', 'exec tail -n +1 -F "$0" > /dev/tcp/127.0.0.1/$1', ctx.file, String(ctx.port)] }
          : { cmd: 'bash', args: ['-c', 'exec cat "$0" > /dev/tcp/127.0.0.1/$1', ctx.file, String(ctx.port)], selfExits: true },
      followName: 'floor: tail -F > /dev/tcp',
    },
    {
      name: 'receiver check: cat octet-framed copy',
      enabled: true,
      receiver: { transport: 'tcp', count: 'frames' },
      start: (ctx) => ({ cmd: 'bash', args: ['-c', 'exec cat "$0" > /dev/tcp/127.0.0.1/$1', ctx.framed, String(ctx.port)], selfExits: true }),
    },
    {
      name: 'auditfwd raw',
      enabled: true,
      receiver: { transport: 'tcp', count: 'frames' },
      follow: true,
      deadDrain: true,
      start: auditfwd(bin, (ctx) => ['--to', `127.0.0.1:${ctx.port}`]),
    },
    {
      name: 'auditfwd --format k8s-audit',
      enabled: f.format,
      receiver: { transport: 'tcp', count: 'frames' },
      follow: true,
      deadDrain: true,
      start: auditfwd(bin, (ctx) => ['--format', 'k8s-audit', '--to', `127.0.0.1:${ctx.port}`]),
    },
    {
      name: 'auditfwd TLS',
      enabled: f.tls,
      receiver: { transport: 'tls', count: 'frames' },
      start: auditfwd(bin, (ctx) => ['--to', `tls://localhost:${ctx.port}`, f.caFlag ?? '--tls-ca', ctx.tls.caFile]),
    },
    {
      name: 'auditfwd RELP',
      enabled: f.relp,
      receiver: { transport: 'relp', count: 'frames' },
      start: auditfwd(bin, (ctx) => ['--to', `relp://127.0.0.1:${ctx.port}`]),
    },
    {
      name: 'rsyslog imfile → omfwd',
      enabled: RSYSLOGD !== undefined,
      receiver: { transport: 'tcp', count: 'frames' },
      follow: true,
      deadDrain: true,
      start: (ctx) => rsyslogForwarder(ctx.dir, ctx.file, ctx.port),
    },
    {
      name: 'syslog-ng file → syslog()',
      enabled: SYSLOG_NG !== undefined,
      receiver: { transport: 'tcp', count: 'frames' },
      follow: true,
      deadDrain: true,
      start: (ctx) => syslogNgForwarder(ctx.dir, ctx.file, ctx.port),
    },
  ];
}
