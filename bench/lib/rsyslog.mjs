import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RSYSLOGD = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));

/**
 * rsyslog as a forwarder, the way a Debian host would ship a file: imfile follows it, omfwd sends
 * RFC 5424 (RSYSLOG_SyslogProtocol23Format) with octet-counted framing over TCP. Its own config,
 * work folder and pid file; its internal messages stay in the default ruleset, off the wire.
 */
export function rsyslogForwarder(dir, file, port) {
  const work = join(dir, 'work');
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    `global(workDirectory="${work}" maxMessageSize="64k")
module(load="imfile")
input(type="imfile" file="${file}" tag="kube-apiserver" readMode="0" freshStartTail="off" ruleset="forward")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="${port}" protocol="tcp" tcp_framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
`,
  );
  return { cmd: RSYSLOGD, args: ['-n', '-f', conf, '-i', join(dir, 'rsyslogd.pid')] };
}
