import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/**
 * A small RELP server for unit tests, written from the RELP frame grammar independently of
 * src/sinks: it parses what the client sends, answers `open` and `close`, and lets each test decide
 * what to answer to each `syslog` command (ack, refuse, or hold the answer back).
 */
export interface ServerFrame {
  txnr: number;
  command: string;
  data: Buffer;
}

export type Answer = 'ack' | 'hold' | { code: number; text: string };

export class RelpConn {
  readonly frames: ServerFrame[] = [];
  /** syslog txnrs received and not answered yet, in order. */
  readonly held: number[] = [];
  private expectTxnr = 1;
  error: string | undefined;

  constructor(readonly socket: Socket) {}

  send(text: string): void {
    this.socket.write(text);
  }

  rsp(txnr: number, data: string): void {
    const len = Buffer.byteLength(data);
    this.send(len > 0 ? `${txnr} rsp ${len} ${data}\n` : `${txnr} rsp 0\n`);
  }

  /** Answers the first `n` held messages with 200 OK (all when n is undefined). */
  ackHeld(n = this.held.length): void {
    for (const txnr of this.held.splice(0, n)) this.rsp(txnr, '200 OK');
  }

  serverclose(): void {
    this.send('0 serverclose 0\n');
    this.socket.end();
  }

  get syslogs(): ServerFrame[] {
    return this.frames.filter((f) => f.command === 'syslog');
  }

  /** Checks what librelp's server checks: transaction numbers 1, 2, 3, … without gaps. */
  checkTxnr(txnr: number): void {
    if (txnr !== this.expectTxnr && !this.error) this.error = `txnr ${txnr}, expected ${this.expectTxnr}`;
    this.expectTxnr = txnr + 1;
  }
}

export class TestRelpServer {
  readonly conns: RelpConn[] = [];
  /** Every syslog message received, over all connections, in order. */
  readonly messages: Buffer[] = [];
  /** Decides the answer to each syslog command; default: acknowledge. */
  answer: (msg: Buffer, conn: RelpConn) => Answer = () => 'ack';
  /** Data of the open response (first line is the code). */
  openReply = '200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog';
  private waiters: Array<{ cond: () => boolean; resolve: () => void }> = [];

  private constructor(private readonly server: Server) {}

  static async start(port = 0): Promise<TestRelpServer> {
    let srv!: TestRelpServer;
    const server = createServer((sock) => srv.accept(sock));
    srv = new TestRelpServer(server);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return srv;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** Resolves once `cond` holds; checked after every frame and connection change. */
  until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ cond, resolve }));
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.cond()) return true;
      w.resolve();
      return false;
    });
  }

  private accept(sock: Socket): void {
    // Answers go out at once, as librelp's do; Nagle would hold small ones back for the peer's delayed ACK.
    sock.setNoDelay(true);
    const conn = new RelpConn(sock);
    this.conns.push(conn);
    let pending = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const f = parseClientFrame(pending);
        if (!f) break;
        if ('error' in f) {
          conn.error = f.error;
          sock.destroy();
          break;
        }
        pending = pending.subarray(f.next);
        this.handle(conn, f.frame);
      }
      this.notify();
    });
    sock.on('error', () => {});
    sock.on('close', () => this.notify());
    this.notify();
  }

  private handle(conn: RelpConn, frame: ServerFrame): void {
    conn.frames.push(frame);
    conn.checkTxnr(frame.txnr);
    if (frame.command === 'open') conn.rsp(frame.txnr, this.openReply);
    else if (frame.command === 'close') {
      conn.rsp(frame.txnr, '');
      conn.socket.end();
    } else if (frame.command === 'syslog') {
      this.messages.push(frame.data);
      const a = this.answer(frame.data, conn);
      if (a === 'ack') {
        if (conn.held.length > 0) conn.held.push(frame.txnr);
        else conn.rsp(frame.txnr, '200 OK');
      } else if (a === 'hold') conn.held.push(frame.txnr);
      else conn.rsp(frame.txnr, `${a.code} ${a.text}`);
    } else conn.rsp(frame.txnr, '500 unknown command');
  }

  dropConnections(): void {
    for (const c of this.conns) c.socket.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }
}

function parseClientFrame(b: Buffer): { frame: ServerFrame; next: number } | { error: string } | undefined {
  // The lookahead keeps a DATALEN cut by a partial read from being taken as complete.
  const m = /^(\d{1,9}) ([a-z]{1,32}) (\d{1,9})(?=[ \n])/.exec(b.subarray(0, 60).toString('latin1'));
  if (!m) return b.length >= 60 ? { error: 'bad header' } : undefined;
  const len = Number(m[3]);
  let i = m[0].length;
  if (i >= b.length) return undefined;
  if (len > 0) {
    if (b[i] !== 0x20) return { error: 'no SP before DATA' };
    if (i + 1 + len >= b.length) return undefined;
    const data = b.subarray(i + 1, i + 1 + len);
    i += 1 + len;
    if (b[i] !== 0x0a) return { error: 'no LF trailer' };
    return { frame: { txnr: Number(m[1]), command: m[2], data: Buffer.from(data) }, next: i + 1 };
  }
  if (b[i] !== 0x0a) return { error: 'no LF trailer after DATALEN 0' };
  return { frame: { txnr: Number(m[1]), command: m[2], data: Buffer.alloc(0) }, next: i + 1 };
}
