import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where .ci/install-syslog-ng unpacks syslog-ng-core (as a package it conflicts with rsyslog). */
const ROOT = process.env.SYSLOG_NG_ROOT ?? '/opt/auditfwd-syslog-ng';
const LIBS = join(ROOT, 'usr/lib/syslog-ng');
const MODULES = join(LIBS, '3.38');
export const SYSLOG_NG = existsSync(join(ROOT, 'usr/sbin/syslog-ng')) && existsSync(join(MODULES, 'libsyslogformat.so')) ? join(ROOT, 'usr/sbin/syslog-ng') : undefined;

/**
 * syslog-ng as a forwarder, configured as its documentation shows for shipping a file: a file()
 * source (each line a message, not parsed) and a syslog() destination, which sends RFC 5424 with
 * octet counting over TCP, on a flow-controlled log path (nothing dropped). Its own config,
 * persist file and control socket; nothing else logged.
 */
export function syslogNgForwarder(dir, file, port) {
  const conf = join(dir, 'syslog-ng.conf');
  writeFileSync(
    conf,
    [
      '@version: 3.38',
      'options { stats-freq(0); use-dns(no); dns-cache(no); log-msg-size(262144); };',
      `source s { file("${file}" flags(no-parse) program-override("kube-apiserver") follow-freq(0.1)); };`,
      `destination d { syslog("127.0.0.1" port(${port}) transport("tcp")); };`,
      // Without flow-control a file source is read as fast as it goes and the destination's queue
      // (log-fifo-size) drops what it cannot hold: 169k of 390k lines, counted as "dropped" in its
      // stats. With it, the source waits for the destination, as every other contender does.
      'log { source(s); destination(d); flags(flow-control); };',
      '',
    ].join('\n'),
  );
  return {
    cmd: SYSLOG_NG,
    args: ['-F', '-f', conf, `--module-path=${MODULES}`, `--persist-file=${join(dir, 'persist')}`, `--pidfile=${join(dir, 'pid')}`, `--control=${join(dir, 'ctl')}`],
    env: { ...process.env, LD_LIBRARY_PATH: LIBS },
  };
}
