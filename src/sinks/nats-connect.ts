import { readFileSync } from 'node:fs';
import { systemTrust } from './system-trust.js';
import { connect, credsAuthenticator, nkeyAuthenticator, tokenAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';

/** How to reach and log in to a NATS cluster: paths only; the files are read at each connect. */
export interface NatsAccess {
  /** Seed servers of one cluster, host:port; the client learns the others from them. */
  servers: Array<{ host: string; port: number }>;
  /** TLS (nats+tls://): CA bundle, client certificate and key, as files; undefined: plain. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** A NATS credentials file (JWT and nkey seed), as `nats --creds` takes. */
  credsFile?: string;
  /** A file holding an nkey seed (SU...), as `nats --nkey` takes. */
  nkeyFile?: string;
  /** A file holding a token, as `nats --token` takes (on the command line it would show in ps). */
  tokenFile?: string;
}

const hostPort = ({ host, port }: { host: string; port: number }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** systemTrust()'s CAs as the one PEM string nats.js takes. */
function systemPem(): string {
  const { ca } = systemTrust();
  return Array.isArray(ca) ? ca.join('\n') : ca.toString('latin1');
}

export const describeServers = (a: NatsAccess) => a.servers.map(hostPort).join(',');

/**
 * Connects to any of the seed servers. Once connected the client reconnects by itself, forever,
 * across every server of the cluster it learnt of; the secrets are read here and never logged.
 */
export function connectNats(a: NatsAccess, opts: { name: string; timeoutMs: number; reconnectMaxDelayMs: number }): Promise<NatsConnection> {
  const secret = (path: string) => readFileSync(path, 'utf8').trim();
  const authenticator = a.credsFile
    ? credsAuthenticator(readFileSync(a.credsFile))
    : a.nkeyFile
      ? nkeyAuthenticator(new TextEncoder().encode(secret(a.nkeyFile)))
      : a.tokenFile
        ? tokenAuthenticator(secret(a.tokenFile))
        : undefined;
  const options: NodeConnectionOptions = {
    servers: a.servers.map((s) => `${a.tls ? 'tls' : 'nats'}://${hostPort(s)}`),
    name: opts.name,
    timeout: opts.timeoutMs,
    maxReconnectAttempts: -1,
    reconnectTimeWait: Math.min(1000, opts.reconnectMaxDelayMs),
    reconnectJitter: 200,
    ...(authenticator && { authenticator }),
    // Without --ca, the system store as the other drains read it (Node's default store is left empty).
    ...(a.tls && { tls: { caFile: a.tls.ca, ca: a.tls.ca ? undefined : systemPem(), certFile: a.tls.cert, keyFile: a.tls.key } }),
  };
  return connect(options);
}
