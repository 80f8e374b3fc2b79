import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { Stats, type SinkStats } from '../../src/telemetry/stats.js';
import type { Batch } from '../../src/batch.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { PoolSink, type PoolMode } from '../../src/sinks/pool.js';
import { PoolQueue } from '../../src/sinks/pool-queue.js';
import { RelpSink } from '../../src/sinks/relp.js';
import { ResendWindow } from '../../src/sinks/resend-window.js';
import { TcpSink } from '../../src/sinks/tcp.js';
import { membersOf, watchMembers } from '../../src/sinks/resolve.js';
import { TestDrain } from '../helpers/drain.js';
import { freePort } from '../helpers/net.js';
import { untilTrue } from '../helpers/ops.js';
import { TestRelpServer } from '../helpers/relp-server.js';

function batch(msgs: string[], onHandedOn: () => void): Batch {
  const frames = Buffer.concat(msgs.map((m) => Buffer.from(`${Buffer.byteLength(m)} ${m}`)));
  return { frames, count: msgs.length, onHandedOn };
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

interface PoolSetup {
  stats: Stats;
  buffer: MemoryBuffer;
  handed: string[];
  logs: Array<Record<string, unknown>>;
  done: Promise<void>;
  push(name: string, msgs: string[]): Promise<void>;
}

function startPool(t: Tap.Test, ports: number[], transport: 'tcp' | 'relp', mode: PoolMode = 'failover', resend?: ResendWindow): PoolSetup {
  const stats = new Stats();
  const buffer = new MemoryBuffer(16 * 1024 * 1024);
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logs.push(JSON.parse(String(c))), cb()) }));
  const progress = new Map();
  const pool = new PoolSink(
    ports.map((port) => ({
      name: `${transport}://127.0.0.1:${port}`,
      make: (s: SinkStats) => {
        const common = { host: '127.0.0.1', port, stats: s, log, backoff: new Backoff(10, 40, 10) };
        return transport === 'relp' ? new RelpSink({ ...common, progress }) : new TcpSink({ ...common, framing: 'octet-counting', resend });
      },
    })),
    mode,
    stats,
    log,
  );
  const done = pool.run(buffer);
  const handed: string[] = [];
  t.teardown(async () => {
    pool.abort();
    await done;
  });
  return { stats, buffer, handed, logs, done, push: (name, msgs) => buffer.push(batch(msgs, () => handed.push(name))) };
}

async function drain(t: Tap.Test, port?: number): Promise<TestDrain> {
  const d = await TestDrain.start({ port });
  t.teardown(() => d.close());
  return d;
}

const bodies = (d: { messages: Buffer[] }) => d.messages.map((m) => m.toString());

/** A pool of TCP members, each with its own options, running on a fresh buffer. */
function tcpPool(t: Tap.Test, members: Array<{ name: string; host: string; port: number; address?: string; reconnectEveryMs?: number }>, mode: PoolMode) {
  const stats = new Stats();
  const log = pino({ level: 'silent' });
  const pool = new PoolSink(
    members.map(({ name, ...m }) => ({ name, make: (s: SinkStats) => new TcpSink({ ...m, stats: s, log, framing: 'octet-counting', backoff: new Backoff(10, 40, 10) }) })),
    mode,
    stats,
    log,
  );
  const buffer = new MemoryBuffer(1 << 20);
  const done = pool.run(buffer);
  t.teardown(() => (pool.abort(), done));
  return { stats, buffer, done };
}

t.test('PoolQueue: hand-ons reach the buffer in the order taken; given-back batches go first, in order', async (t) => {
  const buffer = new MemoryBuffer(1 << 20);
  const handed: string[] = [];
  for (const n of ['a', 'b', 'c', 'd']) await buffer.push(batch([n], () => handed.push(n)));
  const q = new PoolQueue(buffer);
  const [a, b, c] = [q.take()!, q.take()!, q.take()!];
  q.handedOn(c);
  q.handedOn(b);
  t.same(handed, [], 'c and b wait for a');
  q.requeue([a]);
  t.equal(q.take(), a, 'a given back comes before d');
  q.handedOn(a);
  t.same(handed, ['a', 'b', 'c']);
  const d = q.take()!;
  const e = q.take();
  t.equal(e, undefined);
  q.requeue([d]);
  q.returnAll();
  t.equal(buffer.take(), d, 'what the pool held goes back to the buffer at the end');
});

t.test('tcp, failover: the first member down from the start, everything goes to the second', async (t) => {
  const second = await drain(t);
  const s = startPool(t, [await freePort(), second.port], 'tcp');
  for (let i = 0; i < 5; i++) await s.push(`b${i}`, [`m${i}`]);
  s.buffer.close();
  await s.done;
  await second.waitFor(5);
  t.same(bodies(second), names('m', 5));
  t.same(s.handed, names('b', 5));
  const [m1, m2] = [...s.stats.members.values()];
  t.equal(m1.drainConnects, 0);
  t.ok(m1.drainFailures > 0, 'the dead member counts its failures');
  t.equal(m2.messagesSent, 5);
  t.equal(s.stats.messagesSent, 5, 'members add up into the totals');
});

t.test('tcp, failover: a member that dies hands over to the next, with its resend window; the first is taken back', async (t) => {
  const first = await drain(t);
  const second = await drain(t);
  const s = startPool(t, [first.port, second.port], 'tcp', 'failover', new ResendWindow(1024));
  await s.push('b0', ['m0']);
  await first.waitFor(1);
  const port = first.port;
  await first.close();
  await second.waitFor(1);
  await s.push('b1', ['m1']);
  await second.waitFor(2);
  t.same(bodies(second), ['m0', 'm1'], 'the window (m0) first, then the new batch');
  const back = await drain(t, port);
  await untilTrue(() => s.stats.members.get(`tcp://127.0.0.1:${port}`)!.state === 'active', () => 'the first member was not taken back', 5000);
  await s.push('b2', ['m2']);
  await back.waitFor(1);
  t.same(bodies(back), ['m2'], 'the first member is taken back when it answers');
  s.buffer.close();
  await s.done;
  t.same(s.handed, ['b0', 'b1', 'b2']);
  t.ok(s.logs.some((l) => l.msg === 'pool: sending to this member' && l.drain === `tcp://127.0.0.1:${second.port}`));
});

t.test('relp, failover: what the dead member had not acknowledged goes to the next, in order', async (t) => {
  const a = await TestRelpServer.start();
  a.answer = (msg) => (msg.toString() >= 'm3' ? 'hold' : 'ack');
  const b = await TestRelpServer.start();
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const s = startPool(t, [a.port, b.port], 'relp');
  for (let i = 0; i < 6; i++) await s.push(`b${i}`, [`m${i}`]);
  await a.until(() => a.messages.length === 6);
  await untilTrue(() => s.stats.messagesSent === 3, () => `${s.stats.messagesSent} acknowledged`, 5000);
  t.same(s.handed, ['b0', 'b1', 'b2'], 'only acknowledged batches are handed on');
  await a.close();
  await b.until(() => b.messages.length >= 3);
  s.buffer.close();
  await s.done;
  t.same(b.messages.map(String), ['m3', 'm4', 'm5']);
  t.same(s.handed, names('b', 6));
});

t.test('round-robin: batches dealt to the members in turn, handed on in order', async (t) => {
  const d1 = await drain(t);
  const d2 = await drain(t);
  const s = startPool(t, [d1.port, d2.port], 'tcp', 'round-robin');
  // Both connected before the batches come, so that the deal is visible.
  await untilTrue(() => [...s.stats.members.values()].every((m) => m.drainConnected), () => 'members not connected', 5000);
  for (let i = 0; i < 10; i++) await s.push(`b${i}`, [`m${i}`]);
  s.buffer.close();
  await s.done;
  await untilTrue(() => d1.messages.length + d2.messages.length === 10, () => `${d1.messages.length} + ${d2.messages.length} received`, 5000);
  t.ok(d1.messages.length >= 3 && d2.messages.length >= 3, `both members get a share (${d1.messages.length}, ${d2.messages.length})`);
  t.same(s.handed, names('b', 10));
});


t.test('DNS: a name with several addresses is a pool of its own; one address stays one member', async (t) => {
  const lookup = async (host: string) =>
    host === 'relays.test' ? [{ address: '127.0.0.2' }, { address: '127.0.0.3' }, { address: '127.0.0.2' }] : host === 'one.test' ? [{ address: '127.0.0.4' }] : Promise.reject(new Error('ENOTFOUND'));
  const members = await membersOf(
    [
      { transport: 'relp', host: 'relays.test', port: 2514 },
      { transport: 'relp', host: 'one.test', port: 2514 },
      { transport: 'relp', host: 'gone.test', port: 2514 },
      { transport: 'relp', host: '10.0.0.1', port: 2514 },
    ],
    lookup,
  );
  t.same(
    members.map((m) => [m.name, m.address]),
    [
      ['relp://relays.test:2514@127.0.0.2', '127.0.0.2'],
      ['relp://relays.test:2514@127.0.0.3', '127.0.0.3'],
      ['relp://one.test:2514', undefined],
      ['relp://gone.test:2514', undefined],
      ['relp://10.0.0.1:2514', undefined],
    ],
    'each address once, in order; a name that does not resolve now is resolved again at connect',
  );
});

t.test('DNS: a member pinned to an address connects there, whatever its name resolves to', async (t) => {
  const d2 = await TestDrain.start({ host: '127.0.0.2' });
  const d3 = await TestDrain.start({ host: '127.0.0.3', port: d2.port }).catch(() => undefined);
  t.teardown(() => Promise.all([d2.close(), d3?.close()]));
  if (!d3) return t.skip('127.0.0.3 not bindable here');
  const { stats, buffer, done } = tcpPool(t, ['127.0.0.2', '127.0.0.3'].map((address) => ({ name: address, host: 'relays.invalid', port: d2.port, address })), 'round-robin');
  await untilTrue(() => [...stats.members.values()].every((m) => m.drainConnected), () => 'not connected', 5000);
  for (let i = 0; i < 4; i++) await buffer.push(batch([`m${i}`], () => {}));
  buffer.close();
  await done;
  await untilTrue(() => d2.messages.length + d3.messages.length === 4, () => 'not received', 5000);
  t.ok(d2.messages.length > 0 && d3.messages.length > 0, 'both addresses used');
});

t.test('--reconnect-every: connections are replaced between messages, nothing lost or doubled (tcp and relp)', async (t) => {
  for (const transport of ['tcp', 'relp'] as const) {
    const relp = transport === 'relp' ? await TestRelpServer.start() : undefined;
    const tcp = transport === 'tcp' ? await TestDrain.start() : undefined;
    t.teardown(() => Promise.all([relp?.close(), tcp?.close()]));
    const stats = new Stats();
    const log = pino({ level: 'silent' });
    const common = { host: '127.0.0.1', port: (relp ?? tcp)!.port, stats, log, backoff: new Backoff(10, 40, 10), reconnectEveryMs: 60 };
    const sink = relp ? new RelpSink(common) : new TcpSink({ ...common, framing: 'octet-counting', resend: new ResendWindow(1 << 20) });
    const buffer = new MemoryBuffer(1 << 20);
    const done = sink.run(buffer);
    const handed: number[] = [];
    for (let i = 0; i < 40; i++) {
      await buffer.push(batch([`m${i}`], () => handed.push(i)));
      await new Promise((r) => setTimeout(r, 5));
    }
    buffer.close();
    await done;
    const received = relp ? relp.messages.map(String) : (await tcp!.waitFor(40), bodies(tcp!));
    t.same(received, names('m', 40), `${transport}: every message once, in order`);
    t.same(handed, Array.from({ length: 40 }, (_, i) => i));
    const conns = relp ? relp.conns.length : tcp!.connections;
    t.ok(conns >= 2, `${transport}: ${conns} connections`);
    t.equal(stats.messagesResent, 0, 'a connection auditfwd closed is not followed by a resend');
    t.equal(stats.drainFailures, 0);
  }
});

t.test('--reconnect-every in a failover pool: the member in use reconnects without handing over', async (t) => {
  const d1 = await drain(t);
  const d2 = await drain(t);
  const { stats, buffer, done } = tcpPool(t, [d1, d2].map((d) => ({ name: d.address, host: '127.0.0.1', port: d.port, reconnectEveryMs: 40 })), 'failover');
  await untilTrue(() => stats.members.get(d1.address)!.state === 'active', () => 'first member not active', 5000);
  for (let i = 0; i < 30; i++) {
    await buffer.push(batch([`m${i}`], () => {}));
    await new Promise((r) => setTimeout(r, 5));
  }
  buffer.close();
  await done;
  await d1.waitFor(30);
  t.ok(d1.connections >= 2, `the first member reconnected (${d1.connections} connections)`);
  t.same(bodies(d1), names('m', 30), 'every message to the first member, once');
  t.equal(d2.messages.length, 0, 'none to the second');
});

t.test('DNS looked up again: a changed set of addresses is reported once; a failed lookup changes nothing', async (t) => {
  let answer: Array<{ address: string }> | undefined = [{ address: '127.0.0.2' }, { address: '127.0.0.3' }];
  const lookup = async () => (answer ? answer : Promise.reject(new Error('ENOTFOUND')));
  const drains = [{ transport: 'relp' as const, host: 'relays.test', port: 2514 }];
  const current = await membersOf(drains, lookup);
  const seen: string[][] = [];
  let notify: () => void = () => {};
  const stop = watchMembers(drains, current, (ms) => (seen.push(ms.map((m) => m.address ?? '-')), notify()), { everyMs: 10, lookup });
  // The watch's timer does not keep a process alive; this test must stay for it.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => (stop(), clearInterval(alive)));
  const next = () => new Promise<void>((resolve) => (notify = resolve));
  answer = undefined; // a DNS outage: no change reported
  await new Promise((r) => setTimeout(r, 50)); // several rounds of the 10 ms timer
  t.same(seen, [], 'a failed lookup does not collapse the pool');
  let got = next();
  answer = [{ address: '127.0.0.2' }, { address: '127.0.0.3' }, { address: '127.0.0.4' }];
  await got;
  got = next();
  answer = [{ address: '127.0.0.4' }];
  await got;
  t.same(seen, [['127.0.0.2', '127.0.0.3', '127.0.0.4'], ['-']], 'each change once; one address left: one member resolving at connect');
  t.same(await membersOf([{ transport: 'tcp', host: '10.0.0.1', port: 1 }], lookup), [{ drain: { transport: 'tcp', host: '10.0.0.1', port: 1 }, name: 'tcp://10.0.0.1:1' }]);
});
