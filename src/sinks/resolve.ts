import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { describeDestination, type Destination } from './destination.js';

export type Drain = Extract<Destination, { host: string }>;

/** A pool member: a drain, maybe pinned to one of its name's addresses. */
export interface Member {
  drain: Drain;
  /** Set when the name had several addresses: this member connects to this one. */
  address?: string;
  name: string;
}

type Lookup = (host: string) => Promise<Array<{ address: string }>>;
const systemLookup: Lookup = (host) => dnsLookup(host, { all: true });

/**
 * The members the drains make. A name with several A/AAAA records is a pool of its own, one member
 * per address (TLS still verifies the name). A name with one address, or that does not resolve now,
 * stays one member that resolves it again at every connect. Resolved when the sink is made: at the
 * start and at each reload that reconnects.
 */
export async function membersOf(drains: Drain[], lookup: Lookup = systemLookup): Promise<Member[]> {
  const out: Member[] = [];
  for (const drain of drains) {
    const name = describeDestination(drain);
    const addresses = isIP(drain.host) ? [] : await lookup(drain.host).catch(() => []);
    const unique = [...new Set(addresses.map((a) => a.address))];
    if (unique.length <= 1) out.push({ drain, name });
    else for (const address of unique) out.push({ drain, address, name: `${name}@${address.includes(':') ? `[${address}]` : address}` });
  }
  return out;
}
