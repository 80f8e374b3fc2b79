import type { Socket } from 'node:net';
import { encodeFrame, MAX_TXNR, OK, openOffers, parseResponse, RelpProtocolError, RelpReader, type RelpFrame, type RelpResponse } from './relp-protocol.js';

/**
 * One RELP session on a connected socket: the `open` handshake, transaction numbers, routing of
 * `rsp` frames, `close`, and the server's `serverclose`. What is sent and what an acknowledgement
 * means is the sink's business.
 */
export class RelpSession {
  /** Called for each `rsp` to a syslog command. */
  onResponse: (txnr: number, rsp: RelpResponse) => void = () => {};
  /** Why the session ended; undefined while it is alive. */
  endReason: string | undefined;
  readonly ended: Promise<void>;
  private nextTxnr = 1;
  private readonly reader = new RelpReader();
  /** Responses the session itself waits for (open, close). */
  private readonly own = new Map<number, (rsp: RelpResponse) => void>();
  private markEnded!: () => void;

  private constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(
          chunk,
          (frame) => this.dispatch(frame),
          (txnr) => this.respond(txnr, OK),
        );
      } catch (err) {
        this.fail(err instanceof RelpProtocolError ? `protocol error from drain: ${err.message}` : String(err));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.end(err.code ?? err.message));
    socket.on('close', () => this.end('connection closed'));
  }

  /** Sends `open` and waits for a 200 that enables the syslog command. Rejects (and destroys the socket) otherwise. */
  static async open(socket: Socket, timeoutMs: number, software: string): Promise<RelpSession> {
    const session = new RelpSession(socket);
    try {
      const rsp = await session.request('open', openOffers(software), timeoutMs);
      if (rsp === undefined) throw new Error(`no answer to RELP open (${session.endReason ?? `timed out after ${timeoutMs} ms`})`);
      if (rsp.code !== 200) throw new Error(`drain refused RELP open: ${rsp.code} ${rsp.text}`);
      const commands = rsp.offers.get('commands');
      if (commands !== undefined && !commands.split(',').includes('syslog')) {
        throw new Error(`drain does not offer the RELP syslog command (commands=${commands})`);
      }
      return session;
    } catch (err) {
      session.fail('open failed');
      throw err;
    }
  }

  get alive(): boolean {
    return this.endReason === undefined;
  }

  /** Transaction numbers this session can still give to syslog commands (one is kept for close). */
  get txnrsLeft(): number {
    return MAX_TXNR - this.nextTxnr;
  }

  /** The number takeTxnr gives next. */
  get upcomingTxnr(): number {
    return this.nextTxnr;
  }

  takeTxnr(): number {
    return this.nextTxnr++;
  }

  /** Bytes written and not yet taken by the kernel (0: every write so far is complete). */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  /** Writes raw frames; false means wait for 'drain'. */
  write(data: Buffer, done?: () => void): boolean {
    return this.socket.write(data, done);
  }

  /**
   * Sends `close` and waits for its response, which comes after the responses to everything sent
   * before it; then closes the connection. Bounded by `timeoutMs`.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.alive) await this.request('close', '', timeoutMs);
    if (this.alive) {
      this.socket.end();
      const t = setTimeout(() => this.socket.destroy(), timeoutMs);
      await this.ended;
      clearTimeout(t);
    }
    this.destroy();
  }

  /** Ends the session at once with a reason (protocol error, timeout, refusal). */
  fail(reason: string): void {
    this.end(reason);
    this.socket.destroy();
  }

  destroy(): void {
    this.end('closed by auditfwd');
    this.socket.destroy();
  }

  private end(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.markEnded();
  }

  private request(command: string, data: string, timeoutMs: number): Promise<RelpResponse | undefined> {
    const txnr = this.takeTxnr();
    return new Promise((resolve) => {
      const t = setTimeout(() => done(undefined), timeoutMs);
      const done = (rsp: RelpResponse | undefined) => {
        clearTimeout(t);
        this.own.delete(txnr);
        resolve(rsp);
      };
      this.own.set(txnr, done);
      void this.ended.then(() => done(undefined));
      this.socket.write(encodeFrame(txnr, command, data));
    });
  }

  private dispatch(frame: RelpFrame): void {
    if (!this.alive) return;
    if (frame.command === 'serverclose') {
      this.fail('drain closed the session (serverclose)');
      return;
    }
    if (frame.command !== 'rsp') {
      this.fail(`unexpected command "${frame.command}" from drain`);
      return;
    }
    this.respond(frame.txnr, parseResponse(frame.data));
  }

  private respond(txnr: number, rsp: RelpResponse): void {
    if (!this.alive) return;
    const own = this.own.get(txnr);
    if (own) own(rsp);
    else this.onResponse(txnr, rsp);
  }
}
