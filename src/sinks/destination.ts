export type Transport = 'tcp' | 'tls' | 'relp' | 'relp+tls';

export type Destination = { transport: 'stdout' } | { transport: Transport; host: string; port: number };

const SCHEMES: Record<string, Transport> = {
  tcp: 'tcp',
  'tcp+tls': 'tls',
  tls: 'tls',
  relp: 'relp',
  'relp+tls': 'relp+tls',
};

/** Parses `--to`: `-`, `host:port`, `[v6]:port`, or `scheme://host:port`. Throws with what is wrong. */
export function parseDestination(text: string): Destination {
  if (text === '-') return { transport: 'stdout' };
  let transport: Transport = 'tcp';
  let rest = text;
  const scheme = /^([a-z+]+):\/\//i.exec(text);
  if (scheme) {
    const t = SCHEMES[scheme[1].toLowerCase()];
    if (!t) throw new Error(`unknown scheme "${scheme[1]}" (use tcp://, tls://, tcp+tls://, relp:// or relp+tls://)`);
    transport = t;
    rest = text.slice(scheme[0].length).replace(/\/$/, '');
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d*)$/.exec(rest);
  if (!m) {
    if (/^\[?[^:]*\]?$/.test(rest) || /^\[[^\]]*\]$/.test(rest)) throw new Error(`"${text}" has no port (expected host:port)`);
    throw new Error(`"${text}" is not host:port`);
  }
  const host = m[1] ?? m[2];
  if (m[3] === '') throw new Error(`"${text}" has no port (expected host:port)`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${m[3]} is out of range (1-65535)`);
  return { transport, host, port };
}

export function describeDestination(d: Destination): string {
  if (d.transport === 'stdout') return '-';
  const host = d.host.includes(':') ? `[${d.host}]` : d.host;
  return `${d.transport}://${host}:${d.port}`;
}
