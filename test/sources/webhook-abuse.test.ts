import t from 'tap';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { webhookPort } from '../helpers/http.js';
import { get, opsPort, parseMetrics } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';

const TOKEN = 'abuse-test-token';
let serial = 0;
const event = (extra: Record<string, unknown> = {}) => ({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: `ab-${process.pid}-${++serial}`, stage: 'ResponseComplete', verb: 'get', ...extra });
const list = (items: unknown[]) => Buffer.from(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items }));

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/** One POST from `from` (a loopback address of its own, so per-address limits tell clients apart). */
function post(port: number, body: Buffer, opts: { from?: string; token?: string | null } = {}): Promise<Answer> {
  const t0 = Date.now();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/k8s-audit', agent: false, localAddress: opts.from ?? '127.0.0.1', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A client that announces a body and trickles it, one byte every 3 s. Resolves with the status it
 * got (or 0), and when its connection was closed.
 */
function slowBody(t: Tap.Test, port: number, from: string, auth: boolean): Promise<{ status: number; closedAfterMs: number }> {
  const t0 = Date.now();
  const socket: Socket = connect({ host: '127.0.0.1', port, localAddress: from });
  t.teardown(() => socket.destroy());
  socket.write(
    `POST /k8s-audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n${auth ? `Authorization: Bearer ${TOKEN}\r\n` : ''}\r\n{`,
  );
  const trickle = setInterval(() => socket.write(' '), 3000);
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  socket.on('error', () => {});
  return once(socket, 'close').then(() => {
    clearInterval(trickle);
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0), closedAfterMs: Date.now() - t0 };
  });
}

t.test('slow bodies, a flood of large posts and deep nesting: a legitimate client keeps getting 200 within 1 s', async (t) => {
  const dir = t.testdir({ token: `${TOKEN}\n` });
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, [
    '--to', drain.address, '--format', 'k8s-audit', '--listen-webhook', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0',
    '--webhook-token-file', join(dir, 'token'),
    '--webhook-max-request-bytes', '4MiB', '--webhook-max-inflight-bytes', '12MiB', '--webhook-body-timeout', '2s',
    '--webhook-max-requests-per-client', '4',
  ]);
  await run.waitForLog(/serving \/metrics/);
  await run.waitForLog(/webhook listening/);
  const port = webhookPort(run.stderr());

  // The issue's attack: 16 unauthenticated slow bodies (401 at once, connection closed soon after),
  // and 6 authenticated ones from one address (4 hold places until the body deadline, 2 get 429).
  const slowUnauth = Array.from({ length: 16 }, () => slowBody(t, port, '127.0.0.2', false));
  const slowAuth = Array.from({ length: 6 }, () => slowBody(t, port, '127.0.0.3', true));

  // Large posts (about 3.9 MiB each), 12 at once, again and again: the 12 MiB budget takes some.
  const bigEvent = event({ requestObject: { data: 'x'.repeat(200_000) } });
  const big = list(Array.from({ length: 20 }, () => bigEvent));
  let flooding = true;
  const floodStatuses: number[] = [];
  let retryAfter: unknown;
  const flooders = Array.from({ length: 12 }, async () => {
    while (flooding) {
      const r = await post(port, big, { from: '127.0.0.4' }).catch(() => undefined);
      if (!r) continue;
      floodStatuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
  });
  // 5,000 nested arrays inside an event.
  const deep = Buffer.from(`{"kind":"EventList","items":[{"kind":"Event","auditID":"d","x":${'['.repeat(5000)}${']'.repeat(5000)}}]}`);
  const deepAnswers = Promise.all(Array.from({ length: 5 }, () => post(port, deep, { from: '127.0.0.5' })));

  const legit: Answer[] = [];
  const sent: string[] = [];
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const e = event();
    sent.push(e.auditID);
    legit.push(await post(port, list([e])));
  }
  flooding = false;
  await Promise.all(flooders);

  t.ok(legit.length >= 10, `${legit.length} legitimate posts`);
  t.same([...new Set(legit.map((r) => r.status))], [200], 'every legitimate post got 200');
  const slowest = Math.max(...legit.map((r) => r.ms));
  t.ok(slowest < 1000, `each within 1 s (slowest ${slowest} ms)`);
  await drain.waitFor(sent.length);

  const unauth = await Promise.all(slowUnauth);
  t.same([...new Set(unauth.map((r) => r.status))], [401], 'unauthenticated slow bodies: 401 from the headers alone');
  t.ok(unauth.every((r) => r.closedAfterMs < 5000), `and their connections closed (last after ${Math.max(...unauth.map((r) => r.closedAfterMs))} ms)`);
  const auth = await Promise.all(slowAuth);
  t.same(auth.map((r) => r.status).sort(), [408, 408, 408, 408, 429, 429], 'authenticated slow bodies: 4 places for the address, then 408 at the body deadline; the rest 429');

  t.ok(floodStatuses.includes(200) && floodStatuses.includes(429), `the flood: some accepted, the rest 429 (${floodStatuses.length} posts)`);
  t.ok(floodStatuses.every((s) => s === 200 || s === 429), 'nothing else');
  t.equal(retryAfter, '1', '429 carries Retry-After');

  const deepReplies = await deepAnswers;
  t.same([...new Set(deepReplies.map((r) => r.status))], [400], 'deep nesting: 400');
  t.match(deepReplies[0].body, /nested deeper than 100 levels/);

  const metrics = parseMetrics((await get(`http://127.0.0.1:${opsPort(run.stderr())}/metrics`)).text);
  t.equal(metrics.get('auditfwd_webhook_responses_total{code="401"}'), 16, '401s counted by status');
  t.equal(metrics.get('auditfwd_webhook_responses_total{code="400"}'), 5);
  t.equal(metrics.get('auditfwd_webhook_responses_total{code="408"}'), 4);
  const logLines = run.stderr().split('\n');
  t.equal(logLines.filter((l) => /webhook request refused: missing or wrong bearer token/.test(l)).length, 1, '401s logged once (rate-limited)');
  t.equal(logLines.filter((l) => /nested deeper/.test(l)).length, 1, 'deep nesting: one log line');
  t.notMatch(run.stderr(), /Maximum call stack|\s+at .*:\d+:\d+/, 'no stack overflow, no stack trace');
  t.notMatch(run.stderr(), new RegExp(TOKEN), 'the token is never logged');
  t.equal(run.child.exitCode, null, 'still running');
});

t.test('connections beyond --webhook-max-connections-per-client are closed at once; other addresses are served', async (t) => {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--to', drain.address, '--listen-webhook', '127.0.0.1:0', '--webhook-max-connections-per-client', '3']);
  await run.waitForLog(/webhook listening/);
  const port = webhookPort(run.stderr());
  const sockets = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.6' });
      t.teardown(() => s.destroy());
      s.on('error', () => {});
      await once(s, 'connect');
      return s;
    }),
  );
  // Two are closed by the server; the other three still answer.
  const closed: Socket[] = [];
  await new Promise<void>((resolve) => sockets.forEach((s) => s.once('close', () => closed.push(s) === 2 && resolve())));
  t.pass('two connections were closed by the server');
  const answers = await Promise.all(
    sockets.filter((s) => !closed.includes(s)).map((s) => {
      s.write('GET /k8s-audit HTTP/1.1\r\nHost: x\r\n\r\n');
      return once(s, 'data').then(([d]) => String(d).split('\r\n')[0]);
    }),
  );
  t.same(answers, Array(3).fill('HTTP/1.1 405 Method Not Allowed'), 'the first three are served');
  t.equal((await post(port, list([event()]), { token: null })).status, 200, 'another address is served');
  await run.waitForLog(/webhook connection refused: too many from this address/);
});
