import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { freePort } from './net.js';
import { parseRfc5424, splitOctetCounted, type SyslogMessage } from './rfc5424.js';
import { seqOf } from './fixtures.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/**
 * A drain that is down until `up()`, on a port taken from a server that is closed at once and
 * listened on again each time it comes back. `down()` is a drain restart that reads what is already
 * on its sockets before it goes (as rsyslog does on a restart): over plain TCP, what a drain's kernel
 * holds when the drain is killed outright is lost to any sender, so that case is RELP's, not this.
 */
export class FlakyDrain {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  private waiters: Array<{ cond: () => boolean; resolve: () => void }> = [];
  /** Every message received, over every incarnation, in arrival order. */
  readonly messages: Buffer[] = [];
  /** The distinct "seq" numbers received (numberedAuditLines): a resend does not add to them. */
  readonly seqs = new Set<number>();

  private constructor(readonly port: number) {}

  static async reserve(t: TestLike): Promise<FlakyDrain> {
    const flaky = new FlakyDrain(await freePort());
    t.teardown(() => flaky.down());
    return flaky;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const server = createServer((sock) => this.accept(sock));
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    let pending = Buffer.alloc(0);
    sock.on('data', (data: Buffer) => {
      const { frames, rest } = splitOctetCounted(pending.length ? Buffer.concat([pending, data]) : data);
      this.messages.push(...frames);
      for (const f of frames) {
        const m = /\{"seq":(\d+),/.exec(f.toString('latin1', 0, Math.min(f.length, 1024)));
        if (m) this.seqs.add(Number(m[1]));
      }
      pending = rest;
      this.waiters = this.waiters.filter((w) => (w.cond() ? (w.resolve(), false) : true));
    });
    sock.on('error', () => {});
    sock.on('close', () => this.sockets.delete(sock));
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = once(server, 'close');
    server.close();
    for (const s of this.sockets) s.end();
    await closed;
  }

  /** Resolves once `n` messages in total have arrived. */
  waitFor(n: number): Promise<void> {
    return this.until(() => this.messages.length >= n);
  }

  /** Resolves once `n` distinct numbered lines have arrived, however many were sent twice. */
  waitForSeqs(n: number): Promise<void> {
    return this.until(() => this.seqs.size >= n);
  }

  private until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ cond, resolve }));
  }
}

export interface Received {
  lines: string[];
  gaps: SyslogMessage[];
}

export function received(messages: Buffer[]): Received {
  const lines: string[] = [];
  const gaps: SyslogMessage[] = [];
  for (const m of messages) {
    const p = parseRfc5424(m);
    if (p.msgId === 'gap') gaps.push(p);
    else lines.push(p.msg.toString());
  }
  return { lines, gaps };
}

/**
 * Sequence numbers as received, with repeats (a resend after a lost connection or a crash) removed;
 * a repeat is allowed, a new number lower than one seen before is not.
 */
export function firstSeen(lines: string[]): { seqs: number[]; repeats: number; outOfOrder: number } {
  const seen = new Set<number>();
  const seqs: number[] = [];
  let repeats = 0;
  let outOfOrder = 0;
  for (const l of lines) {
    const s = seqOf(l);
    if (seen.has(s)) {
      repeats++;
      continue;
    }
    if (seqs.length > 0 && s < seqs[seqs.length - 1]) outOfOrder++;
    seen.add(s);
    seqs.push(s);
  }
  return { seqs, repeats, outOfOrder };
}

export const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
