import { createRequire } from 'node:module';
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
// Required, not imported: an ESM import of node:dns reads every export, `promises` too, and that
// loads dns/promises, which nothing here uses.
const { lookup: dnsLookup } = createRequire(import.meta.url)('node:dns') as typeof import('node:dns');
const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/**
 * The members the drains make. A name with several A/AAAA records is a pool of its own, one member
 * per address (TLS still verifies the name). A name with one address, or that does not resolve now,
 * stays one member that resolves it again at every connect. Resolved when the sink is made (at the
 * start and at each reload that reconnects) and looked up again by watchMembers.
 */
export async function membersOf(drains: Drain[], lookup: Lookup = systemLookup): Promise<Member[]> {
  return (await resolveAll(drains, lookup)).members;
}

async function resolveAll(drains: Drain[], lookup: Lookup): Promise<{ members: Member[]; failed: boolean }> {
  const members: Member[] = [];
  let failed = false;
  for (const drain of drains) {
    const name = describeDestination(drain);
    const addresses = isIP(drain.host)
      ? []
      : await lookup(drain.host).catch(() => {
          failed = true;
          return [];
        });
    const unique = [...new Set(addresses.map((a) => a.address))];
    if (unique.length <= 1) members.push({ drain, name });
    else for (const address of unique) members.push({ drain, address, name: `${name}@${address.includes(':') ? `[${address}]` : address}` });
  }
  return { members, failed };
}

/** How often names are looked up again to follow a pool that DNS grows or shrinks. */
export const DNS_RECHECK_MS = 60_000;

/**
 * Looks the drains' names up again every `everyMs`; when the members they make changed (an address
 * added or gone), calls `changed` with the new ones. A lookup that fails changes nothing: a DNS
 * outage must not collapse a pool. Returns the function that stops it.
 */
export function watchMembers(drains: Drain[], current: Member[], changed: (members: Member[]) => void, opts: { everyMs?: number; lookup?: Lookup } = {}): () => void {
  if (drains.every((d) => isIP(d.host))) return () => {};
  const key = (ms: Member[]) => ms.map((m) => m.name).join(' ');
  let now = key(current);
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void resolveAll(drains, opts.lookup ?? systemLookup)
      .then(({ members, failed }) => {
        if (failed || key(members) === now) return;
        now = key(members);
        changed(members);
      })
      .finally(() => (busy = false));
  }, opts.everyMs ?? DNS_RECHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
