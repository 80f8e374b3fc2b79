import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/config.js';
import { health, readiness, type HealthSource } from './health.js';
import type { Logger } from '../telemetry/log.js';
import { createMetrics, type MetricsSource } from './metrics.js';

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

type Observed = MetricsSource & HealthSource & { readonly settings: Readonly<Config> };

/** /metrics (Prometheus text), /healthz and /readyz (200 or 503, with the reason as text). */
export async function startOpsServer(listen: { host: string; port: number }, p: Observed, log: Logger): Promise<OpsServer> {
  const registry = createMetrics(p);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const verdict = (v: { ok: boolean; reason: string }) => {
      res.writeHead(v.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end((v.ok ? 'ok: ' : 'unhealthy: ') + v.reason + '\n');
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (path === '/healthz') {
      verdict(health(p, p.settings.unhealthyAfterMs));
    } else if (path === '/readyz') {
      verdict(readiness(p));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics, /healthz or /readyz\n');
    }
  });
  // A scraper that hangs must not hold a socket forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  server.listen(listen.port, listen.host);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  const port = (server.address() as AddressInfo).port;
  log.info({ address: `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}` }, 'serving /metrics, /healthz and /readyz');
  server.unref();
  return {
    port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}
