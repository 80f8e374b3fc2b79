export type Transport = 'tcp' | 'tls' | 'relp' | 'relp+tls' | 'nats' | 'nats+tls';

/** NATS: `servers` are the seeds of one cluster (host and port are the first's). */
export type Destination = { transport: 'stdout' } | { transport: Transport; host: string; port: number; servers?: Array<{ host: string; port: number }> };

export const isNats = (d: Destination): d is Extract<Destination, { host: string }> => d.transport === 'nats' || d.transport === 'nats+tls';
const NATS_PORT = 4222;

const SCHEMES: Record<string, Transport> = {
  tcp: 'tcp',
  'tcp+tls': 'tls',
  tls: 'tls',
  relp: 'relp',
  'relp+tls': 'relp+tls',
  nats: 'nats',
  'nats+tls': 'nats+tls',
};

/** Parses `--to`: `-`, `host:port`, `[v6]:port`, or `scheme://host:port`. Throws with what is wrong. */
export function parseDestination(text: string): Destination {
  if (text === '-') return { transport: 'stdout' };
  let transport: Transport = 'tcp';
  let rest = text;
  const scheme = /^([a-z+]+):\/\//i.exec(text);
  if (scheme) {
    const t = SCHEMES[scheme[1].toLowerCase()];
    if (!t) throw new Error(`unknown scheme "${scheme[1]}" (use tcp://, tls://, tcp+tls://, relp://, relp+tls://, nats:// or nats+tls://)`);
    transport = t;
    rest = text.slice(scheme[0].length).replace(/\/$/, '');
    if (t === 'nats' || t === 'nats+tls') return natsSeeds(t, rest);
  }
  return { transport, ...hostPort(text, rest) };
}

/** `nats://a:4222,b:4222` or `nats://a:4222,nats://b:4222` (the NATS tools' form); the port defaults to 4222. */
function natsSeeds(transport: 'nats' | 'nats+tls', list: string): Destination {
  const servers = list.split(',').map((s) => {
    const one = s.trim().replace(new RegExp(`^${transport.replace('+', '\\+')}://`, 'i'), '').replace(/\/$/, '');
    if (/^[a-z+]+:\/\//i.test(one)) throw new Error(`"${s}": every seed of one NATS cluster takes the same scheme (${transport}://)`);
    return hostPort(s, /^\[.*\]$|^[^:]+$/.test(one) ? `${one}:${NATS_PORT}` : one);
  });
  return { transport, ...servers[0], servers };
}

function hostPort(text: string, rest: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d*)$/.exec(rest);
  if (!m) {
    if (/^\[?[^:]*\]?$/.test(rest) || /^\[[^\]]*\]$/.test(rest)) throw new Error(`"${text}" has no port (expected host:port)`);
    throw new Error(`"${text}" is not host:port`);
  }
  const host = m[1] ?? m[2];
  if (m[3] === '') throw new Error(`"${text}" has no port (expected host:port)`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${m[3]} is out of range (1-65535)`);
  return { host, port };
}

export function describeDestination(d: Destination): string {
  if (d.transport === 'stdout') return '-';
  if (d.servers) return `${d.transport}://${d.servers.map((s) => (s.host.includes(':') ? `[${s.host}]` : s.host) + `:${s.port}`).join(',')}`;
  const host = d.host.includes(':') ? `[${d.host}]` : d.host;
  return `${d.transport}://${host}:${d.port}`;
}

/** `--to nats://a --to nats://b`: the seeds of one cluster, as one `nats://a,b`; undefined for anything else. */
export function natsSeedList(to: unknown): string | undefined {
  if (!Array.isArray(to) || to.length < 2) return undefined;
  const scheme = /^(nats|nats\+tls):\/\//i.exec(String(to[0]))?.[1].toLowerCase();
  if (!scheme || !to.every((v) => String(v).toLowerCase().startsWith(`${scheme}://`))) return undefined;
  return to.map(String).join(',');
}
