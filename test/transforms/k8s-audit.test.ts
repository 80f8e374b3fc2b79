import t from 'tap';
import { FrameWriter } from '../../src/framing/frame-writer.js';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import { Deduper } from '../../src/transforms/dedupe.js';
import {
  DEFAULT_SD_ID,
  isAuditEvent,
  K8sAuditEncoder,
  MAX_SD_VALUE_BYTES,
  normaliseTimestamp,
  type K8sAuditOptions,
} from '../../src/transforms/k8s-audit.js';
import { EventFilter, parseSelector } from '../../src/transforms/selector.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { k8sAuditLines } from '../helpers/fixtures.js';
import { expectedParams } from '../helpers/audit-expect.js';

const RECEIVED = Date.UTC(2026, 10, 23, 10, 0, 0) * 1000;

function setup(t: Tap.Test, opts: Partial<K8sAuditOptions> = {}, maxMessageBytes = 128 * 1024) {
  const stats = new Stats();
  const framer = new Rfc5424Framer({ facility: 1, severity: 6, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes });
  const warnings: string[] = [];
  const warn = { warn: (key: string) => warnings.push(key) } as unknown as K8sAuditOptions['warn'];
  const enc = new K8sAuditEncoder(framer, stats, { format: 'k8s-audit', sdId: DEFAULT_SD_ID, warn, ...opts });
  const run = (lines: Array<string | Buffer>) => {
    const out = new FrameWriter();
    enc.beginBatch();
    // A fixed reception time, so that the fallback is recognisable.
    framer.beginBatch(RECEIVED);
    let n = 0;
    for (const l of lines) {
      const b = Buffer.isBuffer(l) ? l : Buffer.from(l);
      n += enc.encode(out, b, b.length);
    }
    const { frames, rest } = splitOctetCounted(out.take());
    t.equal(rest.length, 0, 'whole frames only');
    t.equal(frames.length, n, 'encode returned the number of frames written');
    return frames.map((f) => parseRfc5424(f));
  };
  return { stats, enc, framer, run, warnings };
}

t.test('all 88 real audit events: header, SD and MSG checked with the independent parser', async (t) => {
  const lines = k8sAuditLines();
  t.equal(lines.length, 88);
  const { run, stats } = setup(t);
  const msgs = run(lines);
  t.equal(msgs.length, 88);
  let fromStage = 0;
  let fromLegacy = 0;
  msgs.forEach((m, i) => {
    const e = JSON.parse(lines[i]) as Record<string, unknown>;
    t.ok(m.msg.equals(Buffer.from(lines[i])), `MSG byte-identical (line ${i})`);
    const ts = (e.stageTimestamp ?? e.requestReceivedTimestamp ?? e.timestamp) as string;
    if (e.stageTimestamp) fromStage++;
    else fromLegacy++;
    // Compare instants, and check the form RFC 5424 wants (the strict parser checked the grammar).
    t.equal(Date.parse(m.timestamp!), Date.parse(ts), `TIMESTAMP is the event time (line ${i})`);
    t.match(m.timestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$/);
    if (/\.\d+Z$/.test(ts)) t.equal(m.timestamp!.split('.')[1], ts.split('.')[1], 'microseconds kept');
    t.equal(m.msgId, e.stage, 'MSGID is the stage');
    t.equal(m.sd.length, 1);
    t.equal(m.sd[0].id, DEFAULT_SD_ID);
    t.same(m.sd[0].params, expectedParams(e), `SD params (line ${i})`);
    t.equal(m.appName, 'kube-apiserver');
    t.equal(m.hostname, 'master-0');
  });
  t.ok(fromStage > 0 && fromLegacy > 0, `both stageTimestamp (${fromStage}) and legacy timestamp (${fromLegacy}) used`);
  t.equal(stats.auditEvents, 88);
  t.equal(stats.nonEventLines, 0);
});

t.test('timestamps: fallback order and normalisation to RFC 5424', async (t) => {
  const base = { kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: 'a', stage: 'ResponseComplete' };
  const { run } = setup(t);
  const ts = (extra: object) => run([JSON.stringify({ ...base, ...extra })])[0].timestamp;
  t.equal(ts({ stageTimestamp: '2024-01-02T03:04:05.123456Z', requestReceivedTimestamp: '2024-01-02T03:04:05.000001Z' }), '2024-01-02T03:04:05.123456Z');
  t.equal(ts({ requestReceivedTimestamp: '2024-01-02T03:04:05.000001Z', timestamp: '2020-01-01T00:00:00Z' }), '2024-01-02T03:04:05.000001Z');
  t.equal(ts({ timestamp: '2020-01-01T00:00:00Z' }), '2020-01-01T00:00:00Z');
  t.equal(ts({ stageTimestamp: 'yesterday', timestamp: '2020-01-01T00:00:00Z' }), '2020-01-01T00:00:00Z', 'an unreadable time falls through');
  t.equal(ts({}), '2026-11-23T10:00:00.000000Z', 'no time at all: the reception time');
  t.equal(normaliseTimestamp('2024-01-02T03:04:05.123456789Z'), '2024-01-02T03:04:05.123456Z', 'nanoseconds cut to micro');
  t.equal(normaliseTimestamp('2024-01-02T03:04:05.5+02:00'), '2024-01-02T01:04:05.5Z', 'offset converted to UTC');
  t.equal(normaliseTimestamp('2024-01-01T00:30:00-01:30'), '2024-01-01T02:00:00Z');
  t.equal(normaliseTimestamp('2016-12-31T23:59:60Z'), '2016-12-31T23:59:59Z', 'no leap second');
  t.equal(normaliseTimestamp('2024-13-01T00:00:00Z'), undefined);
  t.equal(normaliseTimestamp('2024-01-01 00:00:00Z'), undefined);
  t.equal(normaliseTimestamp(12345), undefined);
});

t.test('SD values: escaping of " \\ ], control characters, length cap, absent fields', async (t) => {
  const { run } = setup(t);
  const user = 'evil"user\\with]brackets';
  const [m] = run([
    JSON.stringify({
      kind: 'Event', auditID: 'x]"\\', stage: 'ResponseComplete', verb: 'get',
      user: { username: user }, objectRef: { resource: 'pods', name: 'a\nb\u0000c' },
      responseStatus: { code: 200 }, sourceIPs: [],
    }),
  ]);
  t.same(m.sd[0].params, [
    ['auditID', 'x]"\\'],
    ['stage', 'ResponseComplete'],
    ['verb', 'get'],
    ['user', user],
    ['resource', 'pods'],
    ['name', 'a b c'],
    ['code', '200'],
  ]);
  const long = 'é'.repeat(300);
  const [m2] = run([JSON.stringify({ kind: 'Event', auditID: 'y', user: { username: long } })]);
  const v = m2.sd[0].params.find(([k]) => k === 'user')![1];
  t.ok(Buffer.byteLength(v) <= MAX_SD_VALUE_BYTES, 'capped in bytes');
  t.equal(v, 'é'.repeat(MAX_SD_VALUE_BYTES / 2), 'cut on a character boundary');
  t.equal(m2.msgId, null, 'no stage: MSGID is NILVALUE');
});

t.test('lines that are not events go out raw, counted, never dropped', async (t) => {
  const { run, stats, warnings } = setup(t);
  const lines = [
    'plain text',
    '{"kind":"Event","auditID":"cut',
    '{"kind":"Pod","auditID":"x"}',
    '{"kind":"Event","apiVersion":"v1","auditID":"x"}',
    '{"kind":"Event","auditID":""}',
    '[{"kind":"Event","auditID":"x"}]',
    Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
  ];
  const msgs = run(lines);
  t.equal(msgs.length, lines.length);
  for (const [i, m] of msgs.entries()) {
    t.equal(m.sd.length, 0, 'no SD');
    t.equal(m.msgId, null);
    t.equal(m.timestamp, '2026-11-23T10:00:00.000000Z', 'reception time');
    t.ok(m.msg.equals(Buffer.isBuffer(lines[i]) ? lines[i] : Buffer.from(lines[i])), 'MSG unchanged');
  }
  t.equal(stats.nonEventLines, lines.length);
  t.equal(stats.auditEvents, 0);
  t.equal(warnings.length, lines.length, 'k8s-audit mode warns (the logger rate-limits)');

  const auto = setup(t, { format: 'auto' });
  auto.run(['plain text', k8sAuditLines()[0]]);
  t.equal(auto.stats.nonEventLines, 1);
  t.equal(auto.stats.auditEvents, 1);
  t.equal(auto.warnings.length, 0, 'auto expects mixed input: no warning');
});

t.test('a line cut at --max-message-bytes is forwarded truncated and counted as not an event', async (t) => {
  const { enc, stats, framer } = setup(t, {}, 1024);
  const line = Buffer.from(k8sAuditLines().find((l) => l.length > 2048)!);
  const out = new FrameWriter();
  framer.beginBatch(RECEIVED);
  t.equal(enc.encode(out, line.subarray(0, 1024), line.length), 1);
  const m = parseRfc5424(splitOctetCounted(out.take()).frames[0]);
  t.match(m.msg.toString(), /\[truncated by auditfwd: \d+ bytes\]$/);
  t.equal(stats.linesTruncated, 1);
  t.equal(stats.nonEventLines, 1);
});

t.test('selectors and dedupe inside the encoder', async (t) => {
  const filter = new EventFilter([parseSelector('verb in (create,update,patch,delete)')], [parseSelector('user.username=system:kube-proxy')]);
  const { run, stats } = setup(t, { filter, dedupe: new Deduper(100, 60_000) });
  const lines = k8sAuditLines();
  const msgs = run([...lines, ...lines]);
  const wanted = lines.filter((l) => {
    const e = JSON.parse(l);
    return ['create', 'update', 'patch', 'delete'].includes(e.verb) && e.user?.username !== 'system:kube-proxy';
  });
  const ids = new Set(wanted.map((l) => JSON.parse(l).auditID + '/' + JSON.parse(l).stage));
  t.ok(wanted.length > 0 && wanted.length < lines.length, 'the selector keeps some, not all');
  t.equal(msgs.length, ids.size, 'each selected (auditID, stage) once, though every line came twice');
  t.same(new Set(msgs.map((m) => m.sd[0].params[0][1] + '/' + m.msgId)), ids);
  t.equal(stats.dropped.get('filtered'), 2 * (lines.length - wanted.length));
  t.equal(stats.dropped.get('duplicate'), 2 * wanted.length - ids.size);
});

t.test('isAuditEvent', async (t) => {
  t.ok(isAuditEvent({ kind: 'Event', auditID: 'a' }));
  t.ok(isAuditEvent({ kind: 'Event', apiVersion: 'audit.k8s.io/v1beta1', auditID: 'a' }));
  t.notOk(isAuditEvent({ kind: 'Event', apiVersion: 'events.k8s.io/v1', auditID: 'a' }));
  t.notOk(isAuditEvent({ kind: 'EventList', auditID: 'a' }));
  t.notOk(isAuditEvent(null));
  t.notOk(isAuditEvent([]));
});
