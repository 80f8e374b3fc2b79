import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { Stats } from '../../src/telemetry/stats.js';
import type { Batch } from '../../src/batch.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { RelpSink, type RelpSinkOptions } from '../../src/sinks/relp.js';
import { TestRelpServer } from '../helpers/relp-server.js';

interface Setup {
  server: TestRelpServer;
  stats: Stats;
  buffer: MemoryBuffer;
  logs: Array<Record<string, unknown>>;
  handed: string[];
  done: Promise<void>;
  push(name: string, msgs: string[]): Promise<void>;
  /** Resolves once `cond` holds; checked whenever the sink counts an acknowledgement. */
  acked(cond: () => boolean): Promise<void>;
}

/** Makes stats.messagesSent observable, so a test can await the sink's reaction to an ack. */
function watchAcks(stats: Stats): (cond: () => boolean) => Promise<void> {
  let value = stats.messagesSent;
  let waiters: Array<{ cond: () => boolean; resolve: () => void }> = [];
  Object.defineProperty(stats, 'messagesSent', {
    get: () => value,
    set: (v: number) => {
      value = v;
      waiters = waiters.filter((w) => (w.cond() ? (w.resolve(), false) : true));
    },
  });
  return (cond) => (cond() ? Promise.resolve() : new Promise((resolve) => waiters.push({ cond, resolve })));
}

/** A RelpSink in this process against the test server; batches are named so hand-on order shows. */
async function setup(t: Tap.Test, opts: Partial<RelpSinkOptions> = {}, prepare?: (server: TestRelpServer) => void, buffer = new MemoryBuffer(16 * 1024 * 1024)): Promise<Setup> {
  const server = await TestRelpServer.start();
  prepare?.(server);
  const stats = new Stats();
  const acked = watchAcks(stats);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logs.push(JSON.parse(String(c))), cb()) }));
  const sink = new RelpSink({ host: '127.0.0.1', port: server.port, stats, log, backoff: new Backoff(10, 40, 10), ...opts });
  const done = sink.run(buffer);
  const handed: string[] = [];
  t.teardown(async () => {
    sink.abort();
    await done;
    await server.close();
  });
  return {
    server,
    stats,
    buffer,
    logs,
    handed,
    done,
    acked,
    push: (name, msgs) => buffer.push(batch(msgs, () => handed.push(name))),
  };
}

function batch(msgs: string[], onHandedOn: () => void): Batch {
  const frames = Buffer.concat(msgs.map((m) => Buffer.from(`${Buffer.byteLength(m)} ${m}`)));
  return { frames, count: msgs.length, onHandedOn };
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const texts = (bufs: Buffer[]) => bufs.map((b) => b.toString());

t.test('session: open with offers, syslog txnrs from 2, close at the end', async (t) => {
  const s = await setup(t);
  await s.push('b1', ['<14>1 - h a - - - one', 'two']);
  await s.push('b2', ['three ü']);
  s.buffer.close();
  await s.done;
  const [conn] = s.server.conns;
  const f = conn.frames;
  t.same(f[0].command, 'open');
  t.equal(f[0].data.toString(), 'relp_version=0\nrelp_software=auditfwd\ncommands=syslog');
  t.same(f.slice(1).map((x) => [x.txnr, x.command]), [[2, 'syslog'], [3, 'syslog'], [4, 'syslog'], [5, 'close']]);
  t.same(texts(conn.syslogs.map((x) => x.data)), ['<14>1 - h a - - - one', 'two', 'three ü']);
  t.equal(conn.error, undefined, 'transaction numbers without gaps');
  t.same(s.handed, ['b1', 'b2']);
  t.equal(s.stats.messagesSent, 3);
  t.equal(s.stats.messagesResent, 0);
});

t.test('window: never more unacknowledged messages than the window; nothing handed on before its acks', async (t) => {
  const s = await setup(t, { window: 50 });
  let maxOut = 0;
  // Outstanding at the arrival of each message: those held unanswered plus this one.
  s.server.answer = (_msg, conn) => ((maxOut = Math.max(maxOut, conn.held.length + 1)), 'hold');
  for (let b = 0; b < 4; b++) await s.push(`b${b}`, names(`m${b}-`, 100));
  const conn = await s.server.until(() => s.server.messages.length >= 50).then(() => s.server.conns[0]);
  t.equal(conn.held.length, 50, 'the window is filled');
  t.same(s.handed, [], 'no batch handed on while its messages are unacknowledged');
  // Acknowledge 13 at a time, each time waiting for the client to send more.
  while (s.server.messages.length < 400) {
    const before = s.server.messages.length;
    conn.ackHeld(13);
    await s.server.until(() => s.server.messages.length > before);
  }
  conn.ackHeld();
  s.server.answer = () => 'ack';
  s.buffer.close();
  await s.done;
  t.equal(maxOut, 50, 'in flight never beyond the window');
  t.same(s.handed, ['b0', 'b1', 'b2', 'b3']);
  t.same(texts(s.server.messages), [0, 1, 2, 3].flatMap((b) => names(`m${b}-`, 100)), 'each message once, in order');
});

t.test('write buffers: a window refilled in one go, or a few answers at a time, reuses one buffer when the kernel takes each chunk at once', async (t) => {
  // Counts the fresh 512 KiB write buffers the sink takes (frames() takes one when its pool is empty).
  // And the small pieces it takes fresh (RelpProtocol.frames on the stack: the test server in this
  // process allocates too).
  const POOLED = 512 * 1024;
  let fresh = 0;
  let small = 0;
  const allocUnsafe = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => {
    if (size === POOLED) fresh++;
    else if (new Error().stack!.includes('RelpProtocol.frames')) small++;
    return allocUnsafe(size);
  };
  t.teardown(() => void (Buffer.allocUnsafe = allocUnsafe));
  const s = await setup(t, { window: 1024 });
  // 1,000-byte messages: a window of 1024 is 4 chunks of 256 KiB, written one after the other.
  const msgs = Array.from({ length: 4096 }, (_, i) => String(i).padStart(8, '0') + 'x'.repeat(992));
  for (let b = 0; b < 4; b++) await s.push(`b${b}`, msgs.slice(b * 1024, (b + 1) * 1024));
  s.buffer.close();
  await s.done;
  t.equal(s.server.messages.length, 4096, 'every message arrived');
  t.same(texts(s.server.messages), msgs, 'once, in order');
  // The kernel may not take a chunk whole (then its buffer waits for the write's callback), but
  // not every chunk of every window: before, each chunk of a window took a buffer of its own.
  t.ok(fresh >= 1 && fresh <= 2, `fresh write buffers: ${fresh}`);
  // Answers free room a few messages at a time: those refills go out of the pooled buffer too.
  t.ok(small <= 2, `small pieces allocated: ${small}`);
});

t.test('connection lost after partial acks: only unacknowledged messages go again, on a new session', async (t) => {
  const s = await setup(t);
  let n = 0;
  s.server.answer = () => (++n <= 4 ? 'ack' : 'hold');
  await s.push('b', names('m', 10));
  await s.server.until(() => s.server.messages.length === 10);
  s.server.answer = () => 'ack';
  s.server.dropConnections();
  s.buffer.close();
  await s.done;
  const [first, second] = s.server.conns;
  t.equal(first.syslogs.length, 10);
  t.same(texts(second.syslogs.map((f) => f.data)), names('m', 10).slice(4), 'the acknowledged prefix is not sent again');
  t.same(second.frames.map((f) => f.txnr), [1, 2, 3, 4, 5, 6, 7, 8], 'the new session numbers from 1 again (open, 6 syslog, close)');
  t.equal(s.stats.messagesResent, 6);
  t.equal(s.stats.messagesSent, 10);
  t.same(s.handed, ['b']);
  t.equal(s.stats.reconnects, 1);
});

t.test('acks out of order and gaps: resend skips every acknowledged message', async (t) => {
  const s = await setup(t);
  s.server.answer = () => 'hold';
  await s.push('b', names('m', 6));
  await s.server.until(() => s.server.messages.length === 6);
  const conn = s.server.conns[0];
  // Acknowledge m1, m3 and m4 only (txnrs 3, 5, 6), out of order.
  for (const txnr of [6, 3, 5]) conn.rsp(txnr, '200 OK');
  await s.acked(() => s.stats.messagesSent === 3);
  t.same(s.handed, []);
  s.server.answer = () => 'ack';
  conn.socket.destroy();
  s.buffer.close();
  await s.done;
  t.same(texts(s.server.conns[1].syslogs.map((f) => f.data)), ['m0', 'm2', 'm5']);
  t.equal(s.stats.messagesResent, 3);
  t.same(s.handed, ['b']);
});

t.test('serverclose: reconnect, resend what was not acknowledged', async (t) => {
  const s = await setup(t);
  let n = 0;
  s.server.answer = () => (++n <= 3 ? 'ack' : 'hold');
  await s.push('b1', names('a', 3));
  await s.push('b2', names('b', 3));
  await s.server.until(() => s.server.messages.length === 6);
  s.server.answer = () => 'ack';
  s.server.conns[0].serverclose();
  s.buffer.close();
  await s.done;
  t.same(texts(s.server.conns[1].syslogs.map((f) => f.data)), ['b0', 'b1', 'b2']);
  t.same(s.handed, ['b1', 'b2']);
  t.match(JSON.stringify(s.logs), /serverclose/, 'the reason is logged');
});

t.test('refusal: retried on a new session, dropped and counted after --relp-max-refusals', async (t) => {
  const s = await setup(t, { maxRefusals: 3 });
  let flaky = 0;
  s.server.answer = (msg) => {
    if (msg.toString() === 'poison') return { code: 500, text: 'cannot store' };
    if (msg.toString() === 'flaky' && flaky++ === 0) return { code: 500, text: 'busy' };
    return 'ack';
  };
  await s.push('b1', ['ok1', 'flaky', 'ok2']);
  await s.push('b2', ['poison', 'ok3']);
  await s.push('b3', ['ok4']);
  s.buffer.close();
  await s.done;
  const got = texts(s.server.messages);
  t.equal(got.filter((m) => m === 'poison').length, 3, 'the poison message is tried 3 times');
  t.equal(got.filter((m) => m === 'flaky').length, 2, 'a refusal that clears is delivered on the retry');
  for (const m of ['ok1', 'ok2', 'ok3', 'ok4']) t.equal(got.filter((x) => x === m).length, 1, `${m} once: acknowledged messages are not resent`);
  t.equal(s.stats.dropped.get('relp-refused'), 1);
  t.equal(s.stats.messagesRefused, 4, 'every refusal counted: poison 3 times, flaky once');
  t.equal(s.stats.messagesSent, 5);
  t.same(s.handed, ['b1', 'b2', 'b3'], 'the pipeline goes on');
  const warn = s.logs.filter((l) => l.level === 40).map((l) => l.msg);
  t.ok(warn.includes('drain refused a message; sending it again on a new session'));
  t.ok(warn.includes('drain refused a message too often; dropped it'));
  t.ok(s.logs.some((l) => l.reply === 'cannot store' && l.code === 500), 'the drain\'s reply is logged');
  t.ok(s.server.conns.every((c) => c.error === undefined));
});

t.test('a drain that stops answering is reconnected after the ack timeout', async (t) => {
  const s = await setup(t, { ackTimeoutMs: 200 });
  s.server.answer = () => 'hold';
  await s.push('b', ['x', 'y']);
  await s.server.until(() => s.server.conns.length === 2);
  s.server.answer = () => 'ack';
  await s.acked(() => s.stats.messagesSent === 2);
  s.buffer.close();
  await s.done;
  t.same(s.handed, ['b']);
  t.match(JSON.stringify(s.logs), /no acknowledgement from drain for 200 ms/);
});

for (const [what, reply, reason] of [
  ['open refused', '500 not today', 'drain refused RELP open: 500 not today'],
  ['open without the syslog command', '200 OK\nrelp_version=0\ncommands=foo', 'drain does not offer the RELP syslog command (commands=foo)'],
]) {
  t.test(`${what}: logged, retried with backoff, nothing sent until a good open`, async (t) => {
    const s = await setup(t, {}, (server) => (server.openReply = reply));
    await s.server.until(() => s.server.conns.length >= 3);
    t.same(s.server.messages, [], 'no syslog command on a session that did not open');
    s.server.openReply = '200 OK\nrelp_version=0\ncommands=syslog';
    await s.push('b', ['late']);
    s.buffer.close();
    await s.done;
    t.same(texts(s.server.messages), ['late']);
    t.ok(s.logs.some((l) => l.reason === reason), `logged: ${reason}`);
  });
}

t.test('responses coalesced into one write and cut at odd bytes: every ack is counted', async (t) => {
  const s = await setup(t);
  s.server.answer = () => 'hold';
  await s.push('b', names('m', 20));
  await s.server.until(() => s.server.messages.length === 20);
  const conn = s.server.conns[0];
  const wire = conn.held.splice(0).map((txnr) => `${txnr} rsp 6 200 OK\n`).join('');
  // Pieces of 7 bytes, each written on its own turn of the event loop, so the client reads them apart.
  for (let i = 0; i < wire.length; i += 7) {
    conn.send(wire.slice(i, i + 7));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await s.acked(() => s.stats.messagesSent === 20);
  t.same(s.handed, ['b']);
  s.buffer.close();
  await s.done;
  t.equal(s.server.conns.length, 1, 'no reconnect: the parser waited for the rest of each frame');
  t.equal(s.stats.messagesResent, 0);
});

/** Gives batches back as new objects with the same bytes, as the spill does after writing them to disk. */
class CopyingBuffer extends MemoryBuffer {
  override requeue(batches: Batch[]): void {
    super.requeue(batches.map((b) => ({ ...b, frames: Buffer.from(b.frames) })));
  }
}

t.test('a batch given back as a new object (spilled and read back): acknowledged messages still not resent', async (t) => {
  const s = await setup(t, {}, undefined, new CopyingBuffer(16 * 1024 * 1024));
  let n = 0;
  s.server.answer = () => (++n <= 4 ? 'ack' : 'hold');
  await s.push('b', names('m', 10));
  await s.server.until(() => s.server.messages.length === 10);
  await s.acked(() => s.stats.messagesSent === 4);
  s.server.answer = () => 'ack';
  s.server.dropConnections();
  s.buffer.close();
  await s.done;
  t.same(texts(s.server.conns[1].syslogs.map((f) => f.data)), names('m', 10).slice(4));
  t.equal(s.stats.messagesResent, 6, 'the resends are counted');
  t.equal(s.stats.messagesSent, 10, 'each message acknowledged once');
  t.same(s.handed, ['b']);
});

/** Gives back copies, as a spill does, and only those `keep` allows (drop-oldest dropped the rest). */
class ForgettingBuffer extends MemoryBuffer {
  keep: (b: Batch) => boolean = () => true;
  override requeue(batches: Batch[]): void {
    const kept = batches.filter((b) => this.keep(b));
    // Gone batches are handed on, as the spill's drop does with their commits.
    for (const b of batches) if (!kept.includes(b)) super.requeue([b]), this.take(), this.handedOn(b);
    super.requeue(kept.map((b) => ({ ...b, frames: Buffer.from(b.frames) })));
  }
}

t.test('acknowledgements match by batch id: a batch with the same bytes never takes over another one', async (t) => {
  const buffer = new ForgettingBuffer(16 * 1024 * 1024);
  const s = await setup(t, {}, undefined, buffer);
  let n = 0;
  s.server.answer = () => (++n <= 4 ? 'ack' : 'hold');
  await s.push('a', names('m', 10));
  await s.push('b', names('m', 10)); // the same lines again
  await s.server.until(() => s.server.messages.length === 20);
  await s.acked(() => s.stats.messagesSent === 4);
  let firstId: number | undefined;
  buffer.keep = (b) => (firstId ??= b.id) !== b.id; // 'a' is dropped while away
  s.server.answer = () => 'ack';
  s.server.dropConnections();
  await s.server.until(() => s.server.conns.length === 2 && s.server.conns[1].syslogs.length === 10);
  s.buffer.close();
  await s.done;
  t.same(texts(s.server.conns[1].syslogs.map((f) => f.data)), names('m', 10), "every message of 'b' goes again: none was acknowledged");
  t.same(s.handed, ['a', 'b']);
});

t.test('progress is remembered for any number of batches given back', async (t) => {
  const s = await setup(t, {}, undefined, new CopyingBuffer(16 * 1024 * 1024));
  const N = 400; // more than the 256 batches the sink once remembered, all within one window
  let n = 0;
  s.server.answer = () => (++n <= 4 ? 'ack' : 'hold');
  await s.push('first', names('m', 10));
  for (let i = 0; i < N; i++) await s.push(`b${i}`, [`b${i}`]);
  await s.server.until(() => s.server.messages.length === 10 + N);
  await s.acked(() => s.stats.messagesSent === 4);
  s.server.answer = () => 'ack';
  s.server.dropConnections();
  s.buffer.close();
  await s.done;
  const again = texts(s.server.conns[1].syslogs.map((f) => f.data));
  t.same(again, [...names('m', 10).slice(4), ...names('b', N)], 'the acknowledged messages of the first batch are not resent');
  t.equal(s.stats.messagesSent, 10 + N, 'each message acknowledged once');
  t.equal(s.handed.length, N + 1);
});
