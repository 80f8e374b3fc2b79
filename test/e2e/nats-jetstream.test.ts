import t from 'tap';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { get, untilTrue } from '../helpers/ops.js';
import { freePort } from '../helpers/net.js';
import { runAuditfwd, type Run } from '../helpers/proc.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';
import { NatsCluster, natsServerMissing, readStream } from '../helpers/nats.js';
import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

const missing = natsServerMissing();
if (missing) t.skip(`NATS JetStream: ${missing}`);

const STREAM = 'AUDIT';
const decoder = new TextDecoder();
/** The MSG of an RFC 5424 message auditfwd made from a numbered line: the line itself, from `{"seq":`. */
const lineOf = (m: JsMsg) => {
  const body = decoder.decode(m.data);
  return body.slice(body.indexOf('{"seq":'));
};

async function cluster(t: Tap.Test): Promise<{ c: NatsCluster; nc: NatsConnection }> {
  const c = await NatsCluster.start(t);
  const nc = await c.client();
  t.teardown(() => nc.close());
  await c.addStream(nc, STREAM, ['auditfwd.>']);
  return { c, nc };
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
