import t from 'tap';
import { join } from 'node:path';
import pino from 'pino';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import type { Batch, BatchBuffer } from '../../src/batch.js';
import { WebhookSource } from '../../src/sources/webhook.js';
import { RawEncoder } from '../../src/transforms/encoder.js';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { TestDrain } from '../helpers/drain.js';
import { post, webhookPort } from '../helpers/http.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { k8sAuditLines } from '../helpers/fixtures.js';

type Ev = Record<string, unknown>;
const real: Ev[] = k8sAuditLines().map((l) => JSON.parse(l));
let serial = 0;
/** Real events with fresh auditIDs, so that every one is a distinct message. */
const fresh = (n: number): Ev[] => Array.from({ length: n }, (_, i) => ({ ...real[i % real.length], auditID: `wh-${process.pid}-${++serial}` }));
const eventList = (items: Ev[]) => JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

async function start(t: Tap.Test, extra: string[] = []) {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--to', drain.address, '--format', 'k8s-audit', '--listen-webhook', '127.0.0.1:0', '--hostname', 'm0', ...extra]);
  await run.waitForLog(/webhook listening/);
  return { drain, run, port: webhookPort(run.stderr()) };
}

const ids = (drain: TestDrain) => drain.messages.map((m) => parseRfc5424(m).sd[0]?.params[0][1]);

t.test('EventList, single Event, array of both: 200 and one message per event, MSG compact JSON', async (t) => {
  const { drain, port } = await start(t);
  const list = fresh(3);
  const r1 = await post(port, eventList(list));
  t.equal(r1.status, 200, r1.body);
  const single = fresh(1)[0];
  t.equal((await post(port, JSON.stringify(single, null, 2), { path: '/k8s_audit', headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 200, 'pretty-printed single Event on the other path');
  const [a, b, c] = fresh(3);
  t.equal((await post(port, JSON.stringify([a, JSON.parse(eventList([b, c]))]))).status, 200, 'array of an Event and an EventList');
  t.equal((await post(port, JSON.stringify({ kind: 'EventList', items: null }))).status, 200, 'an empty list is fine');

  const sent = [...list, single, a, b, c];
  await drain.waitFor(sent.length);
  const msgs = drain.messages.map((m) => parseRfc5424(m));
  msgs.forEach((m, i) => {
    t.equal(m.msg.toString(), JSON.stringify(sent[i]), `message ${i}: the event, compact, one line`);
    t.equal(m.msgId, sent[i].stage);
    t.equal(m.sd[0].params[0][1], sent[i].auditID);
    t.equal(m.appName, 'kube-apiserver');
  });
});

t.test('refusals: 400 malformed (nothing forwarded), 413, 405, 415, 404', async (t) => {
  const { drain, port, run } = await start(t, ['--webhook-max-request-bytes', '64KiB', '--webhook-max-event-bytes', '4KiB']);
  const good = fresh(2);
  const body = eventList(good);

  const malformed = await post(port, body.slice(0, -5));
  t.equal(malformed.status, 400);
  t.match(malformed.body, /malformed JSON/);
  t.equal((await post(port, JSON.stringify({ kind: 'EventList', items: [good[0], 'x'] }))).status, 400, 'an item that is not an object');
  t.equal((await post(port, JSON.stringify({ kind: 'Pod' }))).status, 400, 'not an Event or EventList');
  t.equal((await post(port, JSON.stringify([[good[0]]]))).status, 400, 'nested arrays');
  t.equal((await post(port, '42')).status, 400);

  const big = fresh(1)[0];
  big.requestObject = { data: 'x'.repeat(5000) };
  const oneBig = await post(port, eventList([good[0], big]));
  t.equal(oneBig.status, 413, 'an event larger than --webhook-max-event-bytes');
  t.match(oneBig.body, /event 1 is larger than 4096 bytes/);
  const many = await post(port, eventList(fresh(100)));
  t.equal(many.status, 413, 'a request larger than --webhook-max-request-bytes');
  t.match(many.body, /request larger than 65536 bytes/);
  const streamed = await post(port, eventList(fresh(100)), { headers: { 'transfer-encoding': 'chunked' } });
  t.equal(streamed.status, 413, 'a chunked request is counted as it arrives');
  const chunked = await post(port, undefined, { headers: { 'transfer-encoding': 'chunked' } }).catch((e) => e);
  t.equal(chunked.status, 400, 'an empty chunked body is malformed');

  const get = await post(port, undefined, { method: 'GET' });
  t.equal(get.status, 405);
  t.equal(get.headers.allow, 'POST');
  t.equal((await post(port, body, { method: 'PUT' })).status, 405);
  t.equal((await post(port, body, { headers: { 'content-type': 'text/plain' } })).status, 415);
  t.equal((await post(port, body, { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } })).status, 415);
  t.equal((await post(port, body, { path: '/audit' })).status, 404);

  // Everything above was refused whole: the first message the drain sees is this good request's.
  t.equal((await post(port, body)).status, 200);
  await drain.waitFor(2);
  t.same(ids(drain), good.map((e) => e.auditID));
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  t.equal(drain.messages.length, 2, 'nothing else was ever forwarded');
  const last = JSON.parse(run.stderr().split('\n').find((l) => l.includes('"msg":"stopped"'))!);
  t.same(last.webhookResponses, { 200: 1, 400: 6, 404: 1, 405: 2, 413: 3, 415: 2 }, 'answers counted in the final log');
});

t.test('bearer token from a file', async (t) => {
  const dir = t.testdir({ token: 's3cr3t-token\n' });
  const { drain, port, run } = await start(t, ['--webhook-token-file', join(dir, 'token')]);
  const body = eventList(fresh(1));
  const none = await post(port, body);
  t.equal(none.status, 401);
  t.equal(none.headers['www-authenticate'], 'Bearer');
  t.equal((await post(port, body, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  t.equal((await post(port, body, { headers: { authorization: 'Basic czNjcjN0LXRva2Vu' } })).status, 401);
  t.equal((await post(port, body, { headers: { authorization: 'Bearer s3cr3t-token' } })).status, 200);
  await drain.waitFor(1);
  t.notMatch(run.stderr(), /s3cr3t/, 'the token is never logged');
});

t.test('concurrent posts: every event once, each request in order', async (t) => {
  const { drain, port } = await start(t);
  const requests = Array.from({ length: 12 }, () => fresh(10));
  const replies = await Promise.all(requests.map((items) => post(port, eventList(items))));
  t.same(replies.map((r) => r.status), requests.map(() => 200));
  await drain.waitFor(120);
  const got = ids(drain);
  t.equal(new Set(got).size, 120, 'no duplicates, nothing lost');
  for (const items of requests) {
    const positions = items.map((e) => got.indexOf(e.auditID as string));
    t.same(positions, [...positions].sort((x, y) => x - y), 'a request stays in order');
    t.equal(positions[9] - positions[0], 9, 'and together: one request is one batch');
  }
});

t.test('TLS listener', async (t) => {
  if (!hasOpenssl()) {
    t.skip('openssl is needed to make a test certificate (apt-get install openssl)');
    return;
  }
  const cert = new TestPki(t.testdir({})).selfSigned('webhook', { cn: 'localhost', san: ['DNS:localhost'] });
  const { drain, port } = await start(t, ['--webhook-tls-cert', cert.cert, '--webhook-tls-key', cert.key]);
  const ca = cert.certPem;
  const events = fresh(2);
  t.equal((await post(port, eventList(events), { ca })).status, 200);
  await drain.waitFor(2);
  t.same(ids(drain), events.map((e) => e.auditID));
  await t.rejects(post(port, eventList(events)), 'plain HTTP to the TLS port fails');
});

/** A WebhookSource on a stand-in buffer whose push waits for `accept`, and that hands on nothing by itself. */
async function parkedSource(t: Tap.Test, safeTimeoutMs?: number) {
  const pushed: Array<{ batch: Batch; accept: () => void }> = [];
  let pushCalled!: () => void;
  const pushCall = new Promise<void>((r) => (pushCalled = r));
  const buffer = {
    closed: false,
    push: (batch: Batch) =>
      new Promise<void>((accept) => {
        pushed.push({ batch, accept });
        pushCalled();
      }),
  } as unknown as BatchBuffer;
  const stats = new Stats();
  const framer = new Rfc5424Framer({ facility: 1, severity: 6, hostname: 'h', appName: 'a', maxMessageBytes: 65536 });
  const source = new WebhookSource({
    host: '127.0.0.1', port: 0, encoder: new RawEncoder(framer, stats), buffer, stats,
    log: pino({ level: 'silent' }), maxRequestBytes: 1 << 20, maxEventBytes: 1 << 16, safeTimeoutMs,
  });
  const running = source.run();
  t.teardown(() => source.stop());
  const { port } = await source.address();
  return { pushed, pushCall, stats, source, running, port };
}

t.test('200 only once the batch is handed on (or durable), not when the buffer took it', async (t) => {
  const { pushed, pushCall, stats, source, running, port } = await parkedSource(t);
  let answered = false;
  const reply = post(port, eventList(fresh(2))).then((r) => ((answered = true), r));
  await pushCall;
  // The handler is parked in push(): let every pending I/O callback run, then check.
  await new Promise((r) => setImmediate(r));
  t.notOk(answered, 'no answer while the buffer has not taken the batch');
  t.equal(stats.webhookResponses.size, 0, 'the server has not replied (it counts a reply before sending it)');
  t.equal(pushed[0].batch.count, 2);
  t.equal(splitOctetCounted(pushed[0].batch.frames).frames.length, 2);
  pushed[0].accept();
  await new Promise((r) => setImmediate(r));
  t.notOk(answered, 'no answer while the batch is only in memory');
  t.equal(stats.webhookResponses.size, 0, 'the server has not replied while the batch is only in memory');
  pushed[0].batch.onHandedOn!();
  t.equal((await reply).status, 200);
  source.stop();
  await running;
  t.same(Object.fromEntries(stats.webhookResponses), { 200: 1 });
  t.equal(stats.linesRead.get('webhook'), 2);
});

t.test('a batch neither handed on nor durable within the timeout: 503 with Retry-After', async (t) => {
  const { pushed, pushCall, stats, port } = await parkedSource(t, 300);
  const reply = post(port, eventList(fresh(1)));
  await pushCall;
  pushed[0].accept();
  const r = await reply;
  t.equal(r.status, 503);
  t.match(r.body, /not handed on to the drain nor durable within 300 ms/);
  t.equal(r.headers['retry-after'], '5');
  t.same(Object.fromEntries(stats.webhookResponses), { 503: 1 });
});

t.test('stop: no new connections, a request in flight is still answered', async (t) => {
  const { pushed, pushCall, source, running, port } = await parkedSource(t);
  const accept = () => {
    pushed[0].accept();
    pushed[0].batch.onHandedOn!();
  };
  const inflight = post(port, eventList(fresh(1)));
  await pushCall;
  source.stop();
  await t.rejects(post(port, eventList(fresh(1))), { code: 'ECONNREFUSED' }, 'no longer accepting');
  let stopped = false;
  void running.then(() => (stopped = true));
  await new Promise((r) => setImmediate(r));
  t.notOk(stopped, 'run() waits for the request in flight');
  accept();
  const r = await inflight;
  t.equal(r.status, 200);
  t.equal(r.headers.connection, 'close');
  await running;
});
