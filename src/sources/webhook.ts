import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { sharedFrameWriter } from '../framing/frame-writer.js';
import { RateLimitedLog, type Logger } from '../telemetry/log.js';
import type { Stats } from '../telemetry/stats.js';
import type { BatchBuffer } from '../batch.js';
import type { Encoder } from '../transforms/encoder.js';
import type { Source } from './source.js';
import { InflightBudget, MAX_INFLIGHT_REQUESTS, PerClient, type Reservation } from './webhook-budget.js';
import { EventSplitter, SplitError, type SplitEvents } from './webhook-splitter.js';
import { defaultNumber } from '../config/options.js';

/** Falco's k8s_audit plugin serves both spellings; kube-apiserver posts to whatever the kubeconfig names. */
export const WEBHOOK_PATHS = ['/k8s-audit', '/k8s_audit'];
/**
 * How long a request waits for its batch to be safe (on the drain's socket, acknowledged, or fsynced
 * in the spill) before 503: kube-apiserver then retries instead of holding a connection for ever.
 */
export const SAFE_TIMEOUT_MS = defaultNumber('webhook-timeout');
/** Requests up to this size keep their parsed events for the encoder (no second parse); larger ones keep only bytes. */
const KEEP_PARSED_BELOW_BYTES = 1024 * 1024;
/** A refused request whose body was not read: its connection is closed this long after the answer. */
const UNREAD_BODY_GRACE_MS = 1000;

/** The abuse limits' defaults: the flags' (src/config/options.ts). */
export const WEBHOOK_LIMITS = {
  maxInflightBytes: defaultNumber('webhook-max-inflight-bytes'),
  maxInflightEvents: defaultNumber('webhook-max-inflight-events'),
  maxDepth: defaultNumber('webhook-max-depth'),
  bodyTimeoutMs: defaultNumber('webhook-body-timeout'),
  minBodyRate: defaultNumber('webhook-min-body-rate'),
  maxConnectionsPerClient: defaultNumber('webhook-max-connections-per-client'),
  maxRequestsPerClient: defaultNumber('webhook-max-requests-per-client'),
};
export type WebhookLimits = typeof WEBHOOK_LIMITS;

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
  /** Each default from WEBHOOK_LIMITS. */
  limits?: Partial<WebhookLimits>;
  /** Logged at start (a token or key file others can read). */
  warnings?: string[];
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
  private readonly limits: WebhookLimits;
  private readonly budget: InflightBudget;
  private readonly connections: PerClient;
  private readonly requests: PerClient;
  /** Refusals an attacker can repeat at will are logged at most once a minute each. */
  private readonly refusals: RateLimitedLog;
  private inflight = 0;
  private stopping = false;
  private closed: Promise<unknown> | undefined;
  private started!: () => void;
  private readonly startedP = new Promise<void>((resolve) => (this.started = resolve));

  constructor(private readonly opts: WebhookOptions) {
    this.limits = { ...WEBHOOK_LIMITS, ...opts.limits };
    this.budget = new InflightBudget(this.limits.maxInflightBytes, this.limits.maxInflightEvents);
    this.connections = new PerClient(this.limits.maxConnectionsPerClient);
    this.requests = new PerClient(this.limits.maxRequestsPerClient);
    this.refusals = new RateLimitedLog(opts.log);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res, false);
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    // `Expect: 100-continue`: refuse before the client sends a body that would be refused anyway.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res, true));
    this.server.on('connection', (socket: Socket) => {
      const client = socket.remoteAddress ?? '';
      if (!this.connections.take(client)) {
        this.refusals.warn(`connections ${client}`, { client, max: this.limits.maxConnectionsPerClient }, 'webhook connection refused: too many from this address');
        socket.destroy();
        return;
      }
      socket.once('close', () => this.connections.give(client));
    });
    // Bounded time to send the headers and the whole request; the body also has its own pace (readEvents).
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
    for (const w of this.opts.warnings ?? []) this.opts.log.warn(w);
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

  /** Everything is checked from the headers (path, token, type, size, places free) before a byte of body is read. */
  private async handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const client = req.socket.remoteAddress ?? '';
    let counted = false;
    let clientCounted = false;
    const reservation = this.budget.reserve();
    try {
      this.check(req);
      if (this.inflight >= MAX_INFLIGHT_REQUESTS) throw new HttpError(503, 'too many requests in flight', { 'retry-after': '1' });
      if (!this.requests.take(client)) throw new HttpError(429, 'too many requests in flight from this address', { 'retry-after': '1' });
      clientCounted = true;
      this.inflight++;
      counted = true;
      const declared = Number(req.headers['content-length']);
      if (declared > 0 && !reservation.growBytes(declared)) throw this.budgetFull();
      if (expectsContinue) res.writeContinue();
      const events = await this.forward(await this.readEvents(req, reservation));
      this.reply(res, 200, `accepted ${events} events\n`);
    } catch (err) {
      if (err instanceof HttpError || err instanceof SplitError) {
        const headers = err instanceof HttpError ? err.headers : {};
        this.reply(res, err.status, err.message + '\n', headers);
        this.logRefusal(err.status, err.message, client);
      } else {
        this.opts.log.error({ err: (err as Error).message }, 'webhook request failed');
        this.reply(res, 500, 'internal error\n');
      }
    } finally {
      reservation.release();
      if (counted) this.inflight--;
      if (clientCounted) this.requests.give(client);
    }
  }

  private logRefusal(status: number, message: string, client: string): void {
    const fields = { status, client };
    if (status >= 500) this.opts.log.warn(fields, `webhook request refused: ${message}`);
    // What a scanner or a flood can repeat: one line a minute per kind, with how many were not logged.
    else if (status === 401 || status === 408 || status === 429 || /^nested deeper/.test(message)) this.refusals.warn(`${status} ${message}`, fields, `webhook request refused: ${message}`);
    else this.opts.log.debug(fields, `webhook request refused: ${message}`);
  }

  private budgetFull(): HttpError {
    return new HttpError(429, `webhook requests in flight hold their limit (${this.limits.maxInflightBytes} bytes, ${this.limits.maxInflightEvents} events)`, { 'retry-after': '1' });
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

  /**
   * Reads the body into its events as it arrives, within the budget and at a minimum pace: the
   * deadline starts at --webhook-body-timeout and each chunk buys chunk/--webhook-min-body-rate
   * seconds, never more than the timeout ahead (so a pause longer than it, or a trickle, ends it).
   */
  private readEvents(req: IncomingMessage, reservation: Reservation): Promise<SplitEvents> {
    const { maxRequestBytes, maxEventBytes } = this.opts;
    const { bodyTimeoutMs, minBodyRate, maxDepth, maxInflightEvents } = this.limits;
    const splitter = new EventSplitter({
      maxDepth,
      maxEventBytes,
      keepParsedBelowBytes: KEEP_PARSED_BELOW_BYTES,
      onEvent: (n) => {
        if (n > maxInflightEvents) throw new HttpError(413, `request has more than ${maxInflightEvents} events`);
        if (!reservation.growEvents(n)) throw this.budgetFull();
      },
    });
    return new Promise((resolve, reject) => {
      let size = 0;
      let deadline = Date.now() + bodyTimeoutMs;
      let timer: NodeJS.Timeout;
      const cleanup = () => {
        clearTimeout(timer);
        req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
      };
      const fail = (err: unknown) => {
        cleanup();
        reject(err);
      };
      const watch = () => {
        const left = deadline - Date.now();
        if (left > 0) timer = setTimeout(watch, left);
        else fail(new HttpError(408, `request body too slow (a pause over ${bodyTimeoutMs} ms, or under ${minBodyRate} bytes/s)`));
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxRequestBytes) return fail(new HttpError(413, `request larger than ${maxRequestBytes} bytes`));
        if (!reservation.growBytes(size)) return fail(this.budgetFull());
        deadline = Math.min(Date.now() + bodyTimeoutMs, deadline + (chunk.length * 1000) / minBodyRate);
        try {
          splitter.write(chunk);
        } catch (err) {
          fail(err);
        }
      };
      const onEnd = () => {
        cleanup();
        try {
          resolve(splitter.end());
        } catch (err) {
          reject(err);
        }
      };
      const onGone = () => {
        if (!req.complete) fail(new HttpError(400, 'the client went away before the end of the body'));
      };
      timer = setTimeout(watch, bodyTimeoutMs);
      req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
    });
  }

  /** Encodes every event of the request into one batch and waits until it is handed on or durable. */
  private async forward({ count: events, line, parsed }: SplitEvents): Promise<number> {
    const { encoder, buffer, stats } = this.opts;
    // Before encoding, which records events for --dedupe: a refused request must not count as seen.
    if (buffer.closed) throw new HttpError(503, 'shutting down', { 'retry-after': '1' });
    const out = sharedFrameWriter();
    let count = 0;
    // Synchronous from beginBatch to takeBatch: concurrent requests (and other sources) never
    // interleave in the encoder or in the shared frame writer.
    encoder.beginBatch();
    for (let i = 0; i < events; i++) {
      const l = line(i);
      count += parsed && encoder.encodeParsed ? encoder.encodeParsed(out, parsed[i], l) : encoder.encode(out, l, l.length);
    }
    const { frames, memory, release } = out.takeBatch();
    stats.addLines(this.name, events);
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
      const queued = buffer.push({ frames, count, onHandedOn: safe, release, memory }).then(() => handedOn);
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
    if (!res.req.complete) {
      // Discard the rest, but a client that trickles it (or never ends) loses the connection soon
      // after the answer instead of holding it until the request timeout.
      const socket = res.req.socket;
      res.req.resume();
      res.once('finish', () => setTimeout(() => socket.destroy(), UNREAD_BODY_GRACE_MS).unref());
    }
  }
}
