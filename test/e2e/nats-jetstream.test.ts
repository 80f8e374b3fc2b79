import t from 'tap';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { get, opsPort, parseMetrics, until, untilTrue } from '../helpers/ops.js';
import { makeCertificates, opensslMissing } from '../helpers/interop.js';
import { runAuditfwd, type Run } from '../helpers/proc.js';
import { k8sAuditLines, numberedAuditLines, seqOf } from '../helpers/fixtures.js';
import { post, webhookPort } from '../helpers/http.js';
import { NatsCluster, natsServerMissing, readStream } from '../helpers/nats.js';
import type { JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

const missing = natsServerMissing();
if (missing) t.skip(`NATS JetStream: ${missing}`);

const STREAM = 'AUDIT';
const decoder = new TextDecoder();
/** The MSG of an RFC 5424 message auditfwd made from a numbered line: the line itself, from `{"seq":`. */
const lineOf = (m: JsMsg) => {
  const body = decoder.decode(m.data);
  return body.slice(body.indexOf('{"seq":'));
};

async function cluster(t: Tap.Test): Promise<{ c: NatsCluster; nc: NatsConnection; jsm: JetStreamManager }> {
  const c = await NatsCluster.start(t);
  const nc = await c.client();
  t.teardown(() => nc.close());
  const jsm = await c.addStream(nc, STREAM, ['auditfwd.>']);
  return { c, nc, jsm };
}

t.test('a file goes to an R3 stream once, as RFC 5424 with audit headers; sent again, JetStream drops every repeat by its Nats-Msg-Id', { skip: missing }, async (t) => {
  const { c, nc } = await cluster(t);
  const lines = numberedAuditLines(2000);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const args = ['--file', join(dir, 'app', 'audit.log'), '--to', `nats://${c.urls}`, '--format', 'k8s-audit', '--once', '--state-dir', join(dir, 'state')];
  const first = runAuditfwd(t, args);
  t.equal(await first.exited, 0, first.stderr());
  const again = runAuditfwd(t, [...args, '--ignore-positions']);
  t.equal(await again.exited, 0, again.stderr());
  t.match(again.stderr(), new RegExp(`"resent":${lines.length}`), 'the second run: every message acknowledged as a duplicate');
  const got = await readStream(nc, STREAM);
  t.equal(got.length, lines.length, 'every line once, the second run all duplicates');
  t.same(got.map(lineOf), lines, 'in order, MSG unchanged');
  const m = got[0];
  t.equal(m.subject, 'auditfwd.app', 'default subject auditfwd.<app-name>');
  t.match(decoder.decode(m.data), /^<\d+>1 \S+ \S+ app - \S+ \[k8s-audit@47450 auditID="/, 'the RFC 5424 message without its octet count');
  const event = JSON.parse(lines[0]) as { auditID: string; stage: string; verb: string };
  t.equal(m.headers?.get('Audit-ID'), event.auditID);
  t.equal(m.headers?.get('Audit-Stage'), event.stage);
  t.equal(m.headers?.get('Audit-Verb'), event.verb);
  t.match(m.headers?.get('Nats-Msg-Id'), /^\d+:\d+:[\w-]{16}:0$/, 'file identity and the byte offset of the line');
});

/** The NATS server auditfwd last said it is connected to (its port). */
function connectedPort(run: Run): number {
  const all = [...run.stderr().matchAll(/"server":"127\.0\.0\.1:(\d+)","msg":"(?:re)?connected to NATS"/g)];
  return all.length ? Number(all[all.length - 1][1]) : -1;
}

t.test('30,000 lines, kill -9 of the NATS server auditfwd is connected to and of auditfwd itself: the stream holds every line exactly once', { skip: missing, timeout: 90_000 }, async (t) => {
  const { c, nc, jsm } = await cluster(t);
  // The test's own client may be on the killed node, or the stream electing a leader: asked again.
  const stored = async () => jsm.streams.info(STREAM).then((i) => i.state.messages, () => -1);
  const until = async (n: number, why: string) => {
    const deadline = Date.now() + 40_000;
    while ((await stored()) < n) {
      if (Date.now() > deadline) throw new Error(`${why}: stream has ${await stored()} of ${n}\n${c.logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const n = 30_000;
  const lines = numberedAuditLines(n);
  const dir = t.testdir({ app: { 'audit.log': '' }, state: {} });
  const file = join(dir, 'app', 'audit.log');
  // --to repeated: the seeds of one cluster, as the NATS tools take them.
  const seeds = c.urls.split(',').flatMap((u) => ['--to', `nats://${u}`]);
  const args = ['--file', file, ...seeds, '--state-dir', join(dir, 'state'), '--poll-interval', '50ms', '--reconnect-max-delay', '1s'];
  // The audit log grows while auditfwd follows it: about 4,000 lines a second.
  const out = createWriteStream(file, { flags: 'a' });
  const writing = (async () => {
    for (let i = 0; i < n; i += 400) {
      if (!out.write(lines.slice(i, i + 400).join('\n') + '\n')) await new Promise((r) => out.once('drain', r));
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => out.end(r));
  })();
  let run = runAuditfwd(t, args);

  await until(6_000, 'before the server kill');
  const port = connectedPort(run);
  const victim = c.indexOfPort(port);
  t.ok(victim >= 0, `auditfwd is connected to node ${victim + 1} (port ${port})`);
  await c.kill9(victim);
  await c.startNode(victim);

  await until(14_000, 'before the auditfwd kill');
  t.match(run.stderr(), /NATS connection lost; reconnecting/, 'the server kill was felt');
  await untilTrue(() => connectedPort(run) !== port, () => `auditfwd did not reconnect:\n${run.stderr()}`, 20_000);
  run.child.kill('SIGKILL');
  t.equal(await run.exited, 'SIGKILL');
  if (process.env.NATS_TEST_DEBUG) console.error(run.stderr());
  run = runAuditfwd(t, args);

  await writing;
  await until(n, 'after both kills');
  // The first run may have delivered every line before its kill: the stream is then full before the
  // second run is up, and a SIGTERM before its handler is installed ends it by the signal (seen in CI).
  await untilTrue(() => /"msg":"auditfwd started"/.test(run.stderr()), () => `the second run did not start:\n${run.stderr()}`, 20_000);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'stops cleanly once everything is acknowledged');
  // What the restarted run sent again and JetStream dropped by Nats-Msg-Id (a figure, not asserted: it depends on timing).
  t.comment(`sent again after the auditfwd kill, stored once: ${/"resent":(\d+)/.exec(run.stderr())?.[1] ?? '?'}`);

  const got = (await readStream(nc, STREAM)).map((m) => seqOf(lineOf(m)));
  const seen = new Map<number, number>();
  for (const s of got) seen.set(s, (seen.get(s) ?? 0) + 1);
  const repeated = [...seen].filter(([, k]) => k > 1).map(([s]) => s);
  const lost = lines.map((_, i) => i).filter((i) => !seen.has(i));
  t.same({ messages: got.length, lost: lost.slice(0, 10), repeated: repeated.slice(0, 10) }, { messages: n, lost: [], repeated: [] }, 'every line exactly once');
});

t.test('no stream captures the subject: a clear error, /healthz 503 saying so, retried until a stream appears', { skip: missing }, async (t) => {
  const { c, nc, jsm } = await cluster(t);
  const lines = numberedAuditLines(500);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const run = runAuditfwd(t, [
    '--file', join(dir, 'app', 'audit.log'), '--to', `nats://${c.urls}`, '--nats-subject', 'other.audit', '--once', '--state-dir', join(dir, 'state'),
    '--metrics-listen', '127.0.0.1:0', '--unhealthy-after', '200ms', '--reconnect-max-delay', '300ms',
  ]);
  await run.waitForLog(/no JetStream stream captures subject other\.audit/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  const down = await until('503 naming the missing stream', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 503 ? r : undefined;
  });
  t.match(down.text, /drain unreachable for \d+s \(no JetStream stream captures subject other\.audit/);
  await jsm.streams.add({ name: 'OTHER', subjects: ['other.>'], num_replicas: 3, storage: 'file' as never });
  t.equal(await run.exited, 0, run.stderr());
  const got = await readStream(nc, 'OTHER');
  t.same(got.map(lineOf), lines, 'every line, once the stream exists');
});

t.test('a token from --nats-token-file logs in; a wrong one is refused and retried; the token is never logged', { skip: missing }, async (t) => {
  const token = 'tok-3f9a1c77e2';
  const c = await NatsCluster.start(t, 1, [`authorization { token: "${token}" }`]);
  const nc = await c.client(token);
  t.teardown(() => nc.close());
  await c.addStream(nc, STREAM, ['auditfwd.>'], 1);
  const lines = numberedAuditLines(200);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {}, 'token': token + '\n', 'wrong': 'tok-wrong-5b2e\n' });
  const args = ['--file', join(dir, 'app', 'audit.log'), '--to', `nats://${c.urls}`, '--once', '--state-dir', join(dir, 'state'), '--reconnect-max-delay', '200ms', '--exit-timeout', '2s'];
  const wrong = runAuditfwd(t, [...args, '--nats-token-file', join(dir, 'wrong')]);
  t.equal(await wrong.exited, 75, 'not delivered: the rest waits in the spill');
  t.match(wrong.stderr(), /cannot connect to NATS; retrying/);
  t.notMatch(wrong.stderr(), /tok-wrong-5b2e/, 'the wrong token is not in the log');
  const right = runAuditfwd(t, [...args, '--nats-token-file', join(dir, 'token')]);
  t.equal(await right.exited, 0, right.stderr());
  t.notMatch(right.stderr(), new RegExp(token), 'the token is not in the log');
  t.same((await readStream(nc, STREAM)).map(lineOf), lines);
});

t.test("a message larger than the server's max_payload is dropped and counted, the others delivered", { skip: missing }, async (t) => {
  const c = await NatsCluster.start(t, 1, ['max_payload: 4096']);
  const nc = await c.client();
  t.teardown(() => nc.close());
  await c.addStream(nc, STREAM, ['auditfwd.>'], 1);
  const lines = ['{"seq":0,"short":1}', `{"seq":1,"long":"${'x'.repeat(8000)}"}`, '{"seq":2,"short":1}'];
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `nats://${c.urls}`, '--once', '--state-dir', join(dir, 'state')]);
  t.equal(await run.exited, 0, run.stderr());
  t.match(run.stderr(), /larger than the NATS server's max_payload; dropped/);
  t.match(run.stderr(), /"dropped":\{"nats-max-payload":1\}/);
  t.same((await readStream(nc, STREAM)).map(lineOf), [lines[0], lines[2]]);
});

t.test('nats+tls:// verifies the server against --ca; without it (system store) the connection is refused, never plaintext', { skip: missing ?? opensslMissing() }, async (t) => {
  const lines = numberedAuditLines(100);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {}, state2: {}, certs: {} });
  const certs = makeCertificates(join(dir, 'certs'));
  const c = await NatsCluster.start(t, 1, [`tls { cert_file: "${certs.cert}", key_file: "${certs.key}" }`]);
  const nc = await connect({ servers: c.urls, tls: { caFile: certs.ca } });
  t.teardown(() => nc.close());
  await c.addStream(nc, STREAM, ['auditfwd.>'], 1);
  const args = ['--file', join(dir, 'app', 'audit.log'), '--to', `nats+tls://${c.urls}`, '--once', '--state-dir', join(dir, 'state'), '--exit-timeout', '2s', '--reconnect-max-delay', '200ms'];
  const unverified = runAuditfwd(t, args);
  t.equal(await unverified.exited, 75, 'the server certificate is not trusted without --ca');
  t.match(unverified.stderr(), /cannot connect to NATS; retrying/);
  const verified = runAuditfwd(t, [...args, '--ca', certs.ca]);
  t.equal(await verified.exited, 0, verified.stderr());
  t.same((await readStream(nc, STREAM)).map(lineOf), lines);
  // The system store is OpenSSL's (node runs with --use-openssl-ca), which honours SSL_CERT_FILE:
  // with the test CA there, the same run needs no --ca. A run from fresh positions ends (exit 0)
  // only once the server acknowledged every line.
  const fresh = args.map((a) => (a === join(dir, 'state') ? join(dir, 'state2') : a));
  const viaSystem = runAuditfwd(t, fresh, { env: { SSL_CERT_FILE: certs.ca } });
  t.equal(await viaSystem.exited, 0, `trusted through the system store: ${viaSystem.stderr()}`);
});

t.test('connected and idle is healthy: the drain counts as up from the connection, before any acknowledgement', { skip: missing }, async (t) => {
  const c = await NatsCluster.start(t, 1);
  const dir = t.testdir({ app: { 'audit.log': '' }, state: {} });
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `nats://${c.urls}`, '--state-dir', join(dir, 'state'), '--metrics-listen', '127.0.0.1:0', '--unhealthy-after', '0']);
  await run.waitForLog(/connected to NATS/);
  await run.waitForLog(/serving \/metrics/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  t.equal(parseMetrics((await get(`${base}/metrics`)).text).get('auditfwd_drain_connected'), 1);
  t.equal((await get(`${base}/healthz`)).status, 200, 'healthy with --unhealthy-after 0');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
});

t.test('webhook events: Nats-Msg-Id is auditID:stage, so a request kube-apiserver sends again is stored once', { skip: missing }, async (t) => {
  const c = await NatsCluster.start(t, 1);
  const nc = await c.client();
  t.teardown(() => nc.close());
  await c.addStream(nc, STREAM, ['auditfwd.>'], 1);
  const dir = t.testdir({ state: {} });
  const run = runAuditfwd(t, ['--to', `nats://${c.urls}`, '--state-dir', join(dir, 'state'), '--format', 'k8s-audit', '--listen-webhook', '127.0.0.1:0']);
  await run.waitForLog(/webhook listening/);
  const events = k8sAuditLines().slice(0, 5).map((l, i) => ({ ...JSON.parse(l), auditID: `wh-${process.pid}-${i}` }));
  const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: events });
  for (let i = 0; i < 2; i++) t.equal((await post(webhookPort(run.stderr()), body)).status, 200);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, run.stderr());
  const got = await readStream(nc, STREAM);
  t.same(got.map((m) => m.headers?.get('Nats-Msg-Id')), events.map((e) => `${e.auditID}:${e.stage}`), 'each event once, named by auditID and stage');
  t.equal(got[0].subject, 'auditfwd.kube-apiserver');
});
