import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createServer, type Server, type TlsOptions, type TLSSocket } from 'node:tls';
import { splitOctetCounted } from './rfc5424.js';

export interface Handshake {
  /** TLS version negotiated, e.g. TLSv1.3. */
  protocol: string | null;
  /** SNI the client sent. */
  servername: string | false;
  /** CN of the client certificate, if one was presented and verified. */
  clientCn: string | undefined;
}

type Waiter = { done: () => boolean; resolve: () => void };

/**
 * A TLS syslog drain (RFC 5425: octet-counted frames) for tests. Records every raw TCP connection,
 * every completed handshake and every failed one, so a test can show that a client retried and that
 * nothing reached the application layer.
 */
export class TlsTestDrain {
  readonly messages: Buffer[] = [];
  readonly handshakes: Handshake[] = [];
  readonly handshakeErrors: string[] = [];
  tcpConnections = 0;
  private readonly sockets = new Set<Socket>();
  private waiters: Waiter[] = [];

  private constructor(private readonly server: Server) {}

  static async start(options: TlsOptions): Promise<TlsTestDrain> {
    let drain!: TlsTestDrain;
    const server = createServer({ minVersion: 'TLSv1.2', ...options }, (sock) => drain.accept(sock));
    drain = new TlsTestDrain(server);
    server.on('connection', (sock: Socket) => {
      drain.tcpConnections++;
      drain.sockets.add(sock);
      sock.on('close', () => drain.sockets.delete(sock));
      drain.notify();
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      drain.handshakeErrors.push(err.code ?? err.message);
      drain.notify();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return drain;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** Certificate rotation on the server side: new handshakes use these. */
  setSecureContext(options: TlsOptions): void {
    this.server.setSecureContext(options);
  }

  private accept(sock: TLSSocket): void {
    const peer = sock.getPeerCertificate();
    this.handshakes.push({
      protocol: sock.getProtocol(),
      servername: (sock as TLSSocket & { servername: string | false }).servername,
      clientCn: sock.authorized && peer?.subject ? String(peer.subject.CN) : undefined,
    });
    let pending = Buffer.alloc(0);
    sock.on('data', (data: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, data]) : data;
      const { frames, rest } = splitOctetCounted(pending);
      this.messages.push(...frames);
      pending = rest;
      this.notify();
    });
    sock.on('error', () => {});
    this.notify();
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.done()) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once `done()` holds; checked on every connection, handshake, failure and message. */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  waitFor(n: number): Promise<void> {
    return this.until(() => this.messages.length >= n);
  }

  /** Drops every connection (the client must reconnect, with a new handshake). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }
}
