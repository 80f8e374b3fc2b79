import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/** The first port of the kernel's ephemeral range: the ports it hands out to listen(0) and connect(). */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}
const EPHEMERAL_LOW = ephemeralLow();
const LOWEST = 2048;

/**
 * A port nothing listens on (yet). Taken below the kernel's ephemeral range, so that it stays free
 * until the test uses it: a port from listen(0), released, may be handed to another test's listen(0)
 * running beside it (a "down" drain then receives that test's server), or be the local end that
 * auditfwd's own connect picks (a connection to itself). Falls back to listen(0) where the range
 * leaves no room below it.
 */
export async function freePort(): Promise<number> {
  if (EPHEMERAL_LOW - LOWEST >= 4096) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const port = LOWEST + Math.floor(Math.random() * (EPHEMERAL_LOW - LOWEST));
      if (await bindable(port)) return port;
    }
  }
  return (await listenOn(0))!;
}

async function bindable(port: number): Promise<boolean> {
  return (await listenOn(port)) !== undefined;
}

/** Listens on 127.0.0.1:`port` and closes again: the port, or undefined when it was taken. */
async function listenOn(port: number): Promise<number | undefined> {
  const srv = createServer();
  const result = await new Promise<number | undefined>((resolve) => {
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => resolve((srv.address() as { port: number }).port));
  });
  if (result !== undefined) {
    srv.close();
    await once(srv, 'close');
  }
  return result;
}

/** Whether something accepts a TCP connection on 127.0.0.1:`port` now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
