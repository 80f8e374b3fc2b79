import t from 'tap';
import pino from 'pino';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { Stats } from '../../src/telemetry/stats.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { NatsSink } from '../../src/sinks/nats.js';
import { NatsCluster, natsServerMissing, readStream } from '../helpers/nats.js';

// The sink in this process against a real nats-server: the order of hand-ons and what the stream holds.
const missing = natsServerMissing();
if (missing) t.skip(`NATS sink: ${missing}`);

const frames = (...msgs: string[]) => Buffer.concat(msgs.map((m) => Buffer.from(`${Buffer.byteLength(m)} ${m}`)));

async function setup(t: Tap.Test, subject: string) {
  const c = await NatsCluster.start(t, 1);
  const nc = await c.client();
  t.teardown(() => nc.close());
  const jsm = await c.addStream(nc, 'S', ['audit.>'], 1);
  const stats = new Stats();
  const buffer = new MemoryBuffer(16 * 1024 * 1024);
  const sink = new NatsSink({
    access: { servers: [{ host: '127.0.0.1', port: c.nodes[0].port }] },
    subject,
    window: 4,
    ackTimeoutMs: 2000,
    stats,
    log: pino({ level: 'silent' }),
    backoff: new Backoff(20, 50),
  });
  t.teardown(() => sink.abort());
  const handed: string[] = [];
  const push = (name: string, msgs: string[], offsets?: number[]) =>
    buffer.push({ frames: frames(...msgs), count: msgs.length, onHandedOn: () => handed.push(name), ...(offsets && { keys: { prefix: 'f:', offsets } }) });
  return { c, nc, jsm, stats, buffer, sink, handed, push };
}

t.test('batches handed on in order once JetStream acknowledged each message; a batch sent twice is stored once', { skip: missing }, async (t) => {
  const s = await setup(t, 'audit.x');
  const running = s.sink.run(s.buffer);
  await s.push('a', ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], [0, 3, 6, 9, 12, 15]);
  await s.push('empty', []);
  await s.push('b', ['m7'], [18]);
  await s.push('again', ['m7'], [18]);
  await s.push('no-keys', ['m8']);
  s.buffer.close();
  await running;
  t.same(s.handed, ['a', 'empty', 'b', 'again', 'no-keys'], 'in push order, with a window smaller than a batch');
  const got = await readStream(s.nc, 'S');
  t.same(got.map((m) => new TextDecoder().decode(m.data)), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
  t.same(got.map((m) => m.headers?.get('Nats-Msg-Id') ?? null), ['f:0', 'f:3', 'f:6', 'f:9', 'f:12', 'f:15', 'f:18', null]);
  t.equal(s.stats.messagesResent, 1, 'the repeat acknowledged as a duplicate');
  t.equal(s.stats.messagesSent, 9);
});

t.test('no stream captures the subject: nothing handed on, the batch kept and published once a stream exists', { skip: missing }, async (t) => {
  const s = await setup(t, 'other.x');
  const running = s.sink.run(s.buffer);
  await s.push('a', ['m1', 'm2'], [0, 3]);
  await new Promise<void>((resolve) => {
    // Awaited as it happens: the sink's failure sets stats.drainProblem.
    let value = s.stats.drainProblem;
    Object.defineProperty(s.stats, 'drainProblem', {
      get: () => value,
      set: (v: string | undefined) => {
        value = v;
        if (v !== undefined) resolve();
      },
    });
  });
  t.match(s.stats.drainProblem, /no JetStream stream captures subject other\.x/);
  t.equal(s.stats.drainConnected, false, '/healthz counts it as unreachable');
  t.same(s.handed, [], 'not handed on');
  await s.jsm.streams.add({ name: 'O', subjects: ['other.>'], storage: 'file' as never });
  s.buffer.close();
  await running;
  t.same(s.handed, ['a']);
  t.equal(s.stats.drainProblem, undefined, 'cleared by the first acknowledgement');
  t.equal(s.stats.drainConnected, true);
  t.equal((await readStream(s.nc, 'O')).length, 2);
});

t.test('after a refused publish, one message at a time until one is stored: the stream gets the oldest first', { skip: missing }, async (t) => {
  const s = await setup(t, 'other.z');
  // Core NATS sees every publish, stored or refused.
  const published: string[] = [];
  let enough: () => void = () => {};
  const seen = new Promise<void>((resolve) => (enough = resolve));
  s.nc.subscribe('other.z', {
    callback: (_err, m) => {
      published.push(new TextDecoder().decode(m.data));
      if (published.length >= 4 + 2) enough();
    },
  });
  await s.nc.flush();
  const running = s.sink.run(s.buffer);
  await s.push('a', ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], [0, 3, 6, 9, 12, 15]);
  // The first attempt fills its window of 4; each retry after it sends the oldest message alone.
  await seen;
  t.same(published.slice(0, 4), ['m1', 'm2', 'm3', 'm4'], 'the first attempt: a full window');
  t.same(published.slice(4, 6), ['m1', 'm1'], 'retries: the oldest message alone');
  await s.jsm.streams.add({ name: 'Z', subjects: ['other.>'], storage: 'file' as never });
  s.buffer.close();
  await running;
  t.same(s.handed, ['a']);
  const got = await readStream(s.nc, 'Z');
  t.same(got.map((m) => new TextDecoder().decode(m.data)), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'], 'stored in order');
});

t.test('abort: what is unanswered goes back to the buffer at once, not handed on', { skip: missing }, async (t) => {
  const s = await setup(t, 'audit.y');
  await s.c.kill9(0);
  const running = s.sink.run(s.buffer);
  await s.push('a', ['m1']);
  s.sink.abort();
  await running;
  t.same(s.handed, []);
  t.ok(s.buffer.bytes > 0, 'still in the buffer');
});
