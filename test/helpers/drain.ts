import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { splitOctetCounted } from './rfc5424.js';

/**
 * A TCP syslog drain for tests: collects octet-counted (or LF) frames from every connection and lets
 * a test wait for a number of messages, pause reading, or drop connections.
 */
export class TestDrain {
  readonly messages: Buffer[] = [];
  connections = 0;
  private server: Server;
  private sockets = new Set<Socket>();
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  paused = false;

  private constructor(
    readonly framing: 'octet-counting' | 'lf',
    server: Server,
  ) {
    this.server = server;
  }

  static async start(opts: { framing?: 'octet-counting' | 'lf'; port?: number; host?: string } = {}): Promise<TestDrain> {
    let drain!: TestDrain;
    const server = createServer((sock) => drain.accept(sock));
    drain = new TestDrain(opts.framing ?? 'octet-counting', server);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
    await once(server, 'listening');
    return drain;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private accept(sock: Socket): void {
    this.connections++;
    this.sockets.add(sock);
    let pending = Buffer.alloc(0);
    if (this.paused) sock.pause();
    sock.on('data', (data: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, data]) : data;
      if (this.framing === 'lf') {
        let lf;
        while ((lf = pending.indexOf(0x0a)) !== -1) {
          this.messages.push(pending.subarray(0, lf));
          pending = pending.subarray(lf + 1);
        }
      } else {
        const { frames, rest } = splitOctetCounted(pending);
        this.messages.push(...frames);
        pending = rest;
      }
      this.notify();
    });
    sock.on('error', () => {});
    sock.on('close', () => this.sockets.delete(sock));
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.messages.length < w.n) return true;
      w.resolve();
      return false;
    });
  }

  waitFor(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  pause(): void {
    this.paused = true;
    for (const s of this.sockets) s.pause();
  }

  resume(): void {
    this.paused = false;
    for (const s of this.sockets) s.resume();
  }

  /** Drops every open connection (the drain's side closes). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }
}
