import t from 'tap';
import { getEventListeners, once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import pino from 'pino';
import { tlsOpener } from '../../src/sinks/tls.js';
import { TlsMaterial } from '../../src/sinks/tls-material.js';

/** A TLS drain address that is really a plain-TCP syslog port: it accepts and waits for a frame. */
async function silentPort(t: Tap.Test): Promise<{ port: number; helloSeen: Promise<void> }> {
  const sockets = new Set<Socket>();
  let hello!: () => void;
  const helloSeen = new Promise<void>((resolve) => (hello = resolve));
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', () => hello());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, helloSeen };
}

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const material = new TlsMaterial({ ca: undefined, cert: undefined, key: undefined, keyPassphraseFile: undefined, keyPassphraseEnv: false, servername: undefined, fingerprints: [], insecureSkipVerify: false }, log);
  return { lines, open: tlsOpener(material, log) };
}

t.test('a handshake nobody answers times out saying the drain may not speak TLS', async (t) => {
  const { port } = await silentPort(t);
  const { open } = setup();
  await t.rejects(open('127.0.0.1', port, 300), { code: 'ETIMEDOUT', message: /accepted the TCP connection but may not speak TLS on this port/ });
});

t.test('given up on (abort) mid-handshake: rejected at once, and the hint is logged', async (t) => {
  const { port, helloSeen } = await silentPort(t);
  const { open, lines } = setup();
  const ac = new AbortController();
  const opening = open('127.0.0.1', port, 60_000, ac.signal);
  // Abort once the ClientHello arrived: connected, and the handshake is what is pending.
  await helloSeen;
  const started = Date.now();
  ac.abort();
  await t.rejects(opening, { code: 'ABORT_ERR' });
  t.ok(Date.now() - started < 1000, 'not the 60 s connect timeout');
  t.match(lines, [{ msg: /TLS material loaded/ }, { msg: /gave up waiting for the TLS handshake: .* may not speak TLS/ }]);
});

t.test("failed attempts leave no listener on the sink's abort signal (an outage's reconnects kept every socket)", async (t) => {
  const { port } = await silentPort(t);
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const refusedPort = (closed.address() as { port: number }).port;
  closed.close();
  const { open } = setup();
  const ac = new AbortController();
  for (let i = 0; i < 12; i++) await t.rejects(open('127.0.0.1', refusedPort, 5000, ac.signal), { code: 'ECONNREFUSED' });
  await t.rejects(open('127.0.0.1', port, 100, ac.signal), { code: 'ETIMEDOUT' });
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no abort listener left after 13 attempts');
  const pending = open('127.0.0.1', port, 60_000, ac.signal);
  t.equal(getEventListeners(ac.signal, 'abort').length, 1, 'one while an attempt is pending');
  ac.abort();
  await t.rejects(pending, { code: 'ABORT_ERR' });
});
