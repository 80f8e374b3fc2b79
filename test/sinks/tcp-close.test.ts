import t from 'tap';
import pino from 'pino';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import type { Batch } from '../../src/batch.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { END_REPLAYS, ResendWindow } from '../../src/sinks/resend-window.js';
import { SyslogProtocol, TcpSink } from '../../src/sinks/tcp.js';
import { Stats } from '../../src/telemetry/stats.js';
import { TestDrain } from '../helpers/drain.js';
import { splitOctetCounted } from '../helpers/rfc5424.js';
import { untilTrue } from '../helpers/ops.js';

// A clean close of ours (end of input, --reconnect-every) is clean only once the drain closed too:
// until then, what the kernels hold dies with a drain that crashes.

const names = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);
const frames = (msgs: string[]) => Buffer.concat(msgs.map((m) => Buffer.from(`${m.length} ${m}`)));

function start(t: Tap.Test, port: number, extra: { reconnectEveryMs?: number; closeWaitMs?: number; resend?: ResendWindow } = {}) {
  const stats = new Stats();
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => (logs.push(JSON.parse(String(c))), cb()) }));
  const sink = new TcpSink({ host: '127.0.0.1', port, stats, log, framing: 'octet-counting', backoff: new Backoff(10, 40, 10), resend: extra.resend ?? new ResendWindow(1 << 20), ...extra });
  const buffer = new MemoryBuffer(1 << 20);
  const done = sink.run(buffer);
  t.teardown(async () => {
    sink.abort();
    await done;
  });
  const handed: string[] = [];
  const push = async (msgs: string[]) => {
    for (const m of msgs) await buffer.push({ frames: frames([m]), count: 1, onHandedOn: () => handed.push(m) } as Batch);
  };
  const waiting = () => logs.some((l) => l.msg === 'closed our side; waiting for the drain to close its own');
  return { stats, logs, buffer, done, handed, push, waiting };
}

/**
 * A drain whose first connection reads nothing (not even into node's buffers: pauseOnConnect), so
 * what we send stays in the kernels; crash() closes it with those bytes unread (a reset). Later
 * connections are read to the end.
 */
async function crashingDrain(t: Tap.Test) {
  return frameDrain(t, (s, index) => {
    if (index === 0) return false;
    s.resume();
    return true;
  });
}

/**
 * A drain on 127.0.0.1 that splits what it reads into messages. `onConnect` decides per connection
 * (its index) whether to read it at all; connections start paused.
 */
async function frameDrain(t: Tap.Test, onConnect: (s: Socket, index: number) => boolean) {
  const messages: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer({ pauseOnConnect: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    let pending = Buffer.alloc(0);
    if (!onConnect(s, sockets.length - 1)) return;
    s.on('data', (b: Buffer) => {
      pending = Buffer.concat([pending, b]);
      const { frames: got, rest } = splitOctetCounted(pending);
      messages.push(...got.map(String));
      pending = rest;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => (sockets.forEach((s) => s.destroy()), server.close()));
  return { port: (server.address() as { port: number }).port, messages, connections: () => sockets.length, crash: () => sockets[0].destroy() };
}

t.test('end of input: a drain that dies before reading what we sent gets it again on a new connection', async (t) => {
  const d = await crashingDrain(t);
  const { stats, buffer, done, handed, push, waiting } = start(t, d.port);
  await push(names(10));
  buffer.close();
  let finished = false;
  void done.then(() => (finished = true));
  // Written to the kernels, our FIN sent; the drain has read nothing.
  await untilTrue(() => handed.length === 10 && (waiting() || finished), () => `handed ${handed.length}`, 5000);
  t.notOk(finished, 'the sink waits for the drain to close its side');
  d.crash();
  await done;
  t.same(d.messages, names(10), 'every message, from the second connection');
  t.equal(d.connections(), 2);
  t.equal(stats.messagesResent, 10, 'counted as resent');
});

t.test('--reconnect-every: the replaced connection is clean only once the drain closed it; a crash meanwhile is resent', async (t) => {
  const d = await crashingDrain(t);
  const { stats, buffer, done, handed, push, waiting } = start(t, d.port, { reconnectEveryMs: 50 });
  await push(names(10));
  await untilTrue(() => handed.length === 10 && (waiting() || d.connections() > 1), () => `handed ${handed.length}`, 5000);
  t.equal(d.connections(), 1, 'no new connection before the drain closed the old one');
  d.crash();
  await untilTrue(() => d.messages.length >= 10, () => `received ${d.messages.length}`, 5000);
  t.same(d.messages, names(10), 'every message, from the next connection');
  t.equal(stats.messagesResent, 10);
  buffer.close();
  await done;
});

t.test('a drain that reads everything and closes after us: no resend; one that never closes: a warning, no resend', async (t) => {
  const d = await TestDrain.start();
  t.teardown(() => d.close());
  const a = start(t, d.port, { reconnectEveryMs: 30 });
  for (const m of names(20)) {
    await a.push([m]);
    await new Promise((r) => setImmediate(r));
  }
  a.buffer.close();
  await a.done;
  t.same(d.messages.map(String), names(20));
  t.equal(a.stats.messagesResent, 0, 'a drain that closed after us read everything: nothing again');

  // A drain that keeps its side open after our FIN (allowHalfOpen), reading everything.
  const held: Socket[] = [];
  let bytes = 0;
  const server = createServer({ allowHalfOpen: true }, (s) => (held.push(s), s.on('data', (b: Buffer) => (bytes += b.length))));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => (held.forEach((s) => s.destroy()), server.close()));
  const b = start(t, (server.address() as { port: number }).port, { closeWaitMs: 100 });
  await b.push(names(3));
  b.buffer.close();
  await b.done;
  t.equal(bytes, frames(names(3)).length);
  t.equal(b.stats.messagesResent, 0);
  t.ok(b.logs.some((l) => l.msg === 'the drain did not close the connection after ours; not sending its --tcp-resend-window again'), 'said once it waited');
});

t.test("the drain's FIN seen before our own end completes still answers our close: no resend", async (t) => {
  // Under load the drain's FIN can be read in the same turn as, and before, the completion of our
  // end(): it answers our FIN all the same. Taken for a lost connection, every clean close resent its
  // window and reconnected, again and again (a TLS test hung at the end of input).
  const d = await TestDrain.start();
  t.teardown(() => d.close());
  const stats = new Stats();
  const resend = new ResendWindow(1 << 20);
  const proto = new SyslogProtocol({ host: '127.0.0.1', port: d.port, framing: 'octet-counting', stats, log: pino({ level: 'silent' }), resend });
  const sock = connect(d.port, '127.0.0.1');
  await once(sock, 'connect');
  const end = sock.end.bind(sock);
  // Our end() reports completion only after the drain's FIN was seen.
  sock.end = ((cb?: () => void) => {
    end();
    sock.once('end', () => setImmediate(() => cb?.()));
    return sock;
  }) as typeof sock.end;
  const buffer = new MemoryBuffer(1 << 20);
  await buffer.push({ frames: frames(['one']), count: 1, onHandedOn: () => {} } as Batch);
  buffer.close();
  const outcome = await proto.pump(sock, buffer, new Promise<void>(() => {}));
  t.equal(outcome, 'finished', 'a clean close');
  t.notOk(resend.pending, 'nothing to send again');
  t.same(d.messages.map(String), ['one']);
});

t.test('after the end of input, a drain that resets every close gets the window END_REPLAYS more times, then the sink finishes', async (t) => {
  // Answers our FIN with a reset, always (SO_LINGER 0).
  const d = await frameDrain(t, (s) => {
    s.on('end', () => s.resetAndDestroy());
    s.resume();
    return true;
  });
  let gaveUp = 0;
  const resend = new ResendWindow(1 << 20, () => gaveUp++);
  const { stats, buffer, done, push } = start(t, d.port, { resend });
  await push(names(5));
  buffer.close();
  await done;
  t.equal(d.connections(), 1 + END_REPLAYS, 'one connection, then END_REPLAYS for the window');
  t.same(d.messages, Array.from({ length: 1 + END_REPLAYS }, () => names(5)).flat(), 'the window each time, whole');
  t.equal(stats.messagesResent, 5 * END_REPLAYS);
  t.equal(gaveUp, 1, 'given up once, said once');
});
