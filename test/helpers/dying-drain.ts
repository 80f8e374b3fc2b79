import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { splitOctetCounted } from './rfc5424.js';

/**
 * A TCP syslog drain that crashes: each of its first `deaths` connections is destroyed once it has
 * read `bytesPerLife` bytes, so whatever sat in both kernels' buffers at that moment is gone (what a
 * drain process that dies loses). Later connections read everything.
 */
export class DyingDrain {
  readonly messages: Buffer[] = [];
  connections = 0;
  deaths = 0;
  private readonly sockets = new Set<Socket>();
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  private constructor(
    private readonly server: Server,
    private readonly maxDeaths: number,
    private readonly bytesPerLife: number,
  ) {}

  static async start(maxDeaths: number, bytesPerLife: number): Promise<DyingDrain> {
    let drain!: DyingDrain;
    const server = createServer((sock) => drain.accept(sock));
    drain = new DyingDrain(server, maxDeaths, bytesPerLife);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return drain;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  private accept(sock: Socket): void {
    this.connections++;
    this.sockets.add(sock);
    const dies = this.deaths < this.maxDeaths;
    let read = 0;
    let pending = Buffer.alloc(0);
    sock.on('data', (data: Buffer) => {
      if (sock.destroyed) return;
      read += data.length;
      pending = pending.length ? Buffer.concat([pending, data]) : data;
      const { frames, rest } = splitOctetCounted(pending);
      this.messages.push(...frames);
      pending = rest;
      if (dies && read >= this.bytesPerLife) {
        this.deaths++;
        sock.destroy();
      }
      this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
    });
    sock.on('error', () => {});
    sock.on('close', () => this.sockets.delete(sock));
  }

  /** Resolves once `n` messages were received. */
  received(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }
}
