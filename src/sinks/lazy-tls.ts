import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

let tls: typeof Tls | undefined;

/**
 * node:tls, loaded on first use: a forwarder that sends plain TCP does not pay the ~2 MB of RSS
 * that loading it costs (its JS and the parts of the node binary it touches).
 */
export function nodeTls(): typeof Tls {
  tls ??= createRequire(import.meta.url)('node:tls') as typeof Tls;
  return tls;
}
