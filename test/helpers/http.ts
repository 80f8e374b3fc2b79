import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface PostOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** https with this CA. */
  ca?: Buffer;
}

/** One HTTP request on a fresh connection; resolves with the whole reply. */
export function post(port: number, body: string | Buffer | undefined, opts: PostOptions = {}): Promise<Reply> {
  const request = opts.ca ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'POST',
        path: opts.path ?? '/k8s-audit',
        headers: { 'content-type': 'application/json', ...opts.headers },
        agent: false,
        ca: opts.ca,
        servername: opts.ca ? 'localhost' : undefined,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    // The server may answer (413) and close before the whole body is written: the reply still counts.
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads the port from auditfwd's "webhook listening" log line. */
export function webhookPort(stderr: string): number {
  const m = /"port":(\d+)[^\n]*"msg":"webhook listening"/.exec(stderr);
  if (!m) throw new Error(`no "webhook listening" line in: ${stderr}`);
  return Number(m[1]);
}
