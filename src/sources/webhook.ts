import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { sharedFrameWriter } from '../framing/frame-writer.js';
import type { Logger } from '../ops/log.js';
import type { Stats } from '../ops/stats.js';
import type { BatchBuffer } from '../record.js';
import type { Encoder } from '../transforms/encoder.js';
import type { Source } from './source.js';

/** Falco's k8s_audit plugin serves both spellings; kube-apiserver posts to whatever the kubeconfig names. */
export const WEBHOOK_PATHS = ['/k8s-audit', '/k8s_audit'];
/** Requests being read, or waiting for buffer room or to be safe, at once; more get 503 and kube-apiserver retries. */
export const MAX_INFLIGHT_REQUESTS = 16;
/**
 * How long a request waits for its batch to be safe (on the drain's socket, acknowledged, or fsynced
 * in the spill) before 503: kube-apiserver then retries instead of holding a connection for ever.
 */
export const SAFE_TIMEOUT_MS = 30_000;

export interface WebhookOptions {
  host: string;
  port: number;
  encoder: Encoder;
  buffer: BatchBuffer;
  stats: Stats;
  log: Logger;
  tls?: { cert: Buffer; key: Buffer };
  /** Bearer token every request must carry; never logged. */
  token?: string;
  maxRequestBytes: number;
  maxEventBytes: number;
  /** Default SAFE_TIMEOUT_MS. */
  safeTimeoutMs?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * kube-apiserver's audit webhook backend as a source: each POST carries an EventList (or an Event,
 * or an array of either). The answer is 200 only once the whole request is safe: handed on to the
 * drain, or durable in the spill. So kube-apiserver's retries cover everything that failed before;
 * a request is all or nothing.
 */
export class WebhookSource implements Source {
  readonly name = 'webhook';
  private readonly server: Server;
  private readonly tokenHash: Buffer | undefined;
  private inflight = 0;
  private stopping = false;
  private closed: Promise<unknown> | undefined;
  private started!: () => void;
  private readonly startedP = new Promise<void>((resolve) => (this.started = resolve));

  constructor(private readonly opts: WebhookOptions) {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    // `Expect: 100-continue`: refuse before the client sends a body that would be refused anyway.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      try {
        this.check(req);
      } catch (err) {
        if (err instanceof HttpError) return this.reply(res, err.status, err.message + '\n', err.headers);
      }
      res.writeContinue();
      handler(req, res);
    });
    // Bounded time to send a request: a client that trickles bytes cannot hold a slot for ever.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 60_000;
    this.tokenHash = opts.token === undefined ? undefined : sha256(opts.token);
  }

  /** The port actually bound (useful with port 0); resolves once listening. */
  async address(): Promise<AddressInfo> {
    await this.startedP;
    return this.server.address() as AddressInfo;
  }

  async run(): Promise<void> {
    if (this.stopping) return;
    this.closed = once(this.server, 'close');
    this.server.listen(this.opts.port, this.opts.host);
    await Promise.race([once(this.server, 'listening'), once(this.server, 'error').then(([err]) => Promise.reject(err))]);
    const a = this.server.address() as AddressInfo;
    this.opts.log.info({ address: a.address, port: a.port, tls: Boolean(this.opts.tls), paths: WEBHOOK_PATHS }, 'webhook listening');
    this.started();
    if (this.stopping) this.server.close();
    await this.closed;
  }

  /** Stop accepting; requests already being read are still answered, then the server closes. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.server.listening) {
      this.server.close();
      this.server.closeIdleConnections();
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let counted = false;
    try {
      this.check(req);
      if (this.inflight >= MAX_INFLIGHT_REQUESTS) throw new HttpError(503, 'too many requests in flight', { 'retry-after': '1' });
      this.inflight++;
      counted = true;
      const body = await this.readBody(req);
      const items = this.parse(body);
      const events = await this.forward(items);
      this.reply(res, 200, `accepted ${events} events\n`);
    } catch (err) {
      if (err instanceof HttpError) {
        this.reply(res, err.status, err.message + '\n', err.headers);
        if (err.status >= 500) this.opts.log.warn({ status: err.status }, `webhook request refused: ${err.message}`);
        else this.opts.log.debug({ status: err.status }, `webhook request refused: ${err.message}`);
      } else {
        this.opts.log.error({ err }, 'webhook request failed');
        this.reply(res, 500, 'internal error\n');
      }
    } finally {
      if (counted) this.inflight--;
    }
  }

  private check(req: IncomingMessage): void {
    const path = (req.url ?? '').split('?')[0];
    if (!WEBHOOK_PATHS.includes(path)) throw new HttpError(404, `not found; POST audit events to ${WEBHOOK_PATHS.join(' or ')}`);
    if (req.method !== 'POST') throw new HttpError(405, 'only POST is allowed', { allow: 'POST' });
    if (this.tokenHash) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      // Hashes compare in constant time whatever the lengths.
      if (!m || !timingSafeEqual(sha256(m[1].trim()), this.tokenHash)) {
        throw new HttpError(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' });
      }
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') throw new HttpError(415, 'Content-Type must be application/json', { accept: 'application/json' });
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') throw new HttpError(415, `Content-Encoding ${encoding} is not supported`);
    if (this.stopping) throw new HttpError(503, 'shutting down', { 'retry-after': '1' });
    const declared = Number(req.headers['content-length']);
    if (declared > this.opts.maxRequestBytes) throw new HttpError(413, `request larger than ${this.opts.maxRequestBytes} bytes`);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.opts.maxRequestBytes) throw new HttpError(413, `request larger than ${this.opts.maxRequestBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks, size);
  }

  /** An EventList, an Event, or an array of either: the events as objects, or 400. */
  private parse(body: Buffer): object[] {
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
    }
    const items: object[] = [];
    const take = (v: unknown, where: string, nested: boolean) => {
      if (v === null || typeof v !== 'object' || (Array.isArray(v) && nested)) throw new HttpError(400, `${where} is not an Event or an EventList`);
      if (Array.isArray(v)) {
        v.forEach((e, i) => take(e, `item ${i}`, true));
        return;
      }
      const kind = (v as { kind?: unknown }).kind;
      if (kind === 'EventList') {
        const list = (v as { items?: unknown }).items;
        if (list === null || list === undefined) return; // an empty list may be sent as items: null
        if (!Array.isArray(list)) throw new HttpError(400, `${where}: EventList items is not an array`);
        list.forEach((e, i) => {
          if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new HttpError(400, `${where}: items[${i}] is not an object`);
          items.push(e as object);
        });
      } else if (kind === 'Event') {
        items.push(v);
      } else {
        throw new HttpError(400, `${where} is not an Event or an EventList`);
      }
    };
    take(doc, 'the body', false);
    return items;
  }

  /** Encodes every event of the request into one batch and waits until it is handed on or durable. */
  private async forward(items: object[]): Promise<number> {
    const lines = items.map((item) => Buffer.from(JSON.stringify(item)));
    const tooBig = lines.findIndex((l) => l.length > this.opts.maxEventBytes);
    if (tooBig !== -1) throw new HttpError(413, `event ${tooBig} is larger than ${this.opts.maxEventBytes} bytes`);
    const { encoder, buffer, stats } = this.opts;
    // Before encoding, which records events for --dedupe: a refused request must not count as seen.
    if (buffer.closed) throw new HttpError(503, 'shutting down', { 'retry-after': '1' });
    const out = sharedFrameWriter();
    let count = 0;
    // Synchronous from beginBatch to takeBatch: concurrent requests (and other sources) never
    // interleave in the encoder or in the shared frame writer.
    encoder.beginBatch();
    lines.forEach((line, i) => {
      count += encoder.encodeParsed ? encoder.encodeParsed(out, items[i], line) : encoder.encode(out, line, line.length);
    });
    const { frames, release } = out.takeBatch();
    stats.addLines(this.name, items.length);
    if (count === 0) {
      release();
      return 0;
    }
    let safe!: () => void;
    const handedOn = new Promise<void>((resolve) => (safe = resolve));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      const ms = this.opts.safeTimeoutMs ?? SAFE_TIMEOUT_MS;
      timer = setTimeout(() => reject(new HttpError(503, `not handed on to the drain nor durable within ${ms} ms`, { 'retry-after': '5' })), ms);
    });
    try {
      // The buffer calls onHandedOn in order, so this also waits for everything queued before.
      const queued = buffer.push({ frames, count, onHandedOn: safe, release }).then(() => handedOn);
      queued.catch(() => {}); // after a 503 for the deadline, nobody awaits it
      await Promise.race([queued, deadline]);
    } finally {
      clearTimeout(timer);
    }
    return count;
  }

  private reply(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    this.opts.stats.addWebhookResponse(status);
    if (res.headersSent) return;
    const h: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', ...headers };
    // An unread body (refused early) or a server going down: do not keep the connection.
    if (status === 413 || this.stopping || !res.req.complete) h.connection = 'close';
    res.writeHead(status, h);
    res.end(text);
    if (!res.req.complete) res.req.resume(); // discard the rest; the connection closes after it
  }
}
