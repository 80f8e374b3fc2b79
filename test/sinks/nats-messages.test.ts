import t from 'tap';
import { ConfigError, resolveConfig, type RawSettings } from '../../src/config/config.js';
import { parseDestination, describeDestination, natsSeedList } from '../../src/sinks/destination.js';
import { natsMessages, sdParams } from '../../src/sinks/nats-messages.js';

const frames = (...msgs: string[]) => Buffer.concat(msgs.map((m) => Buffer.from(`${Buffer.byteLength(m)} ${m}`)));
const EVENT = '<14>1 2017-09-11T19:55:05Z vm app - ResponseComplete [meta@1 a="b"][k8s-audit@47450 auditID="id-1" stage="ResponseComplete" verb="list" user="a\\"b\\]c" sourceIP="::1"] {"kind":"Event"}';

t.test('nats:// seeds of one cluster: comma list, each with or without the scheme, port 4222 by default', async (t) => {
  t.same(parseDestination('nats://a:4223,nats://b,[::1]:5000'), {
    transport: 'nats',
    host: 'a',
    port: 4223,
    servers: [{ host: 'a', port: 4223 }, { host: 'b', port: 4222 }, { host: '::1', port: 5000 }],
  });
  t.same(parseDestination('nats+tls://n1.example.com').servers, [{ host: 'n1.example.com', port: 4222 }]);
  t.equal(describeDestination(parseDestination('nats://a,b:1')), 'nats://a:4222,b:1');
  t.throws(() => parseDestination('nats://a:1,tls://b:2'), /same scheme/);
  t.throws(() => parseDestination('nats://a:99999'), /out of range/);
  t.equal(natsSeedList(['nats://a:1', 'NATS://b:2']), 'nats://a:1,NATS://b:2', '--to repeated: one list');
  t.equal(natsSeedList(['nats://a:1', 'tls://b:2']), undefined, 'mixed: not a seed list');
  t.equal(natsSeedList(['nats://a:1']), undefined);
  t.same(parseDestination('tls://drain:6514'), { transport: 'tls', host: 'drain', port: 6514 }, 'other schemes unchanged');
});

t.test('settings: subject from the app name, NATS flags only with nats://, NATS TLS takes files only', async (t) => {
  const cfg = (raw: RawSettings) => resolveConfig(raw);
  t.equal(cfg({ to: 'nats://a', file: ['/var/vcap/sys/log/kube-apiserver/audit.log'] }).nats?.subject, 'auditfwd.kube-apiserver');
  t.equal(cfg({ to: 'nats://a', appName: 'my app*' }).nats?.subject, 'auditfwd.my_app_');
  t.equal(cfg({ to: 'nats://a', natsSubject: 'audit.z1' }).nats?.subject, 'audit.z1');
  t.equal(cfg({ to: 'nats://a' }).nats?.window, 1024);
  t.same(cfg({ to: 'nats://a', tls: true, ca: '/ca.pem' }).nats?.access.tls, { ca: '/ca.pem', cert: undefined, key: undefined }, '--tls makes it nats+tls');
  t.equal(cfg({ to: 'tcp://a:1' }).nats, undefined);
  t.throws(() => cfg({ to: 'tcp://a:1', natsWindow: 5 }), new ConfigError('--nats-window: only for a NATS destination (--to nats://host:4222)'));
  t.throws(() => cfg({ to: 'nats://a', natsSubject: 'audit.>' }), /--nats-subject: "audit.>" is not a subject/);
  t.throws(() => cfg({ to: 'nats://a', natsCreds: '/c', natsTokenFile: '/t' }), /--nats-token-file: give one of/);
  t.throws(() => cfg({ to: 'nats+tls://a', fingerprint: ['a'.repeat(64)] }), /--fingerprint: not supported with nats\+tls/);
  t.throws(() => cfg({ to: 'nats://a', natsWindow: 0 }), /--nats-window/);
});

t.test('SD params of the k8s-audit element, unescaped; other elements and raw lines give none', async (t) => {
  t.same(sdParams(Buffer.from(EVENT), 'k8s-audit@47450'), { auditID: 'id-1', stage: 'ResponseComplete', verb: 'list', user: 'a"b]c', sourceIP: '::1' });
  t.same(sdParams(Buffer.from(EVENT), 'meta@1'), { a: 'b' });
  t.equal(sdParams(Buffer.from('<14>1 - h app - - - {"raw":1}'), 'k8s-audit@47450'), undefined);
  t.equal(sdParams(Buffer.from('<14>1 - h app - - [k8s-audit@47450 auditID="cut'), 'k8s-audit@47450'), undefined, 'a cut message is no match, not a throw');
});

t.test('messages: body without the octet count, ids from keys (repeats numbered), else auditID:stage, headers', async (t) => {
  const raw = natsMessages({ frames: frames('<14>1 a', '<14>1 b', '<14>1 c'), count: 3, keys: { prefix: 'f:', offsets: [0, 10, 10] } }, undefined);
  t.same(raw.map((m) => Buffer.from(m.body).toString()), ['<14>1 a', '<14>1 b', '<14>1 c']);
  t.same(raw.map((m) => m.msgId), ['f:0', 'f:10', 'f:10#1']);
  t.equal(raw[0].headers, undefined, 'raw lines: no audit headers');
  const [ev] = natsMessages({ frames: frames(EVENT), count: 1 }, 'k8s-audit@47450');
  t.equal(ev.msgId, 'id-1:ResponseComplete', 'the webhook (no keys): auditID and stage');
  t.same(Object.fromEntries(ev.headers!), { 'Audit-ID': 'id-1', 'Audit-Stage': 'ResponseComplete', 'Audit-Verb': 'list', 'Audit-User': 'a"b]c', 'Audit-Source-IP': '::1' });
  const [keyed] = natsMessages({ frames: frames(EVENT), count: 1, keys: { prefix: 'f:', offsets: [7] } }, 'k8s-audit@47450');
  t.equal(keyed.msgId, 'f:7', "a file's keys win: the same event in two places is two lines");
  t.equal(natsMessages({ frames: frames('<14>1 x'), count: 1 }, undefined)[0].msgId, undefined, 'stdin: nothing stable, no id');
});
