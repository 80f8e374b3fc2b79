import t from 'tap';
import { readFileSync } from 'node:fs';
import { FrameWriter } from '../../src/framing/frame-writer.js';
import { Rfc5424Framer, sdElement, timestampMicros } from '../../src/framing/rfc5424.js';
import { octetToLf } from '../../src/framing/octet.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { k8sAuditPath } from '../helpers/fixtures.js';

const base = { facility: 1, severity: 6, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes: 4096 };

function frame(lines: Buffer[], opts = base, origLengths?: number[]) {
  const framer = new Rfc5424Framer(opts);
  const out = new FrameWriter(16);
  lines.forEach((l, i) => framer.append(out, l, origLengths?.[i] ?? l.length));
  const { frames, rest } = splitOctetCounted(out.take());
  t.equal(rest.length, 0, 'no partial frame');
  return frames.map((f) => parseRfc5424(f));
}

t.test('header fields', async (t) => {
  const [m] = frame([Buffer.from('hello')]);
  t.equal(m.pri, 14);
  t.equal(m.version, 1);
  t.match(m.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  t.equal(m.hostname, 'master-0');
  t.equal(m.appName, 'kube-apiserver');
  t.equal(m.procId, null);
  t.equal(m.msgId, null);
  t.same(m.sd, []);
  t.equal(m.msg.toString(), 'hello');
});

t.test('PRI from facility and severity', async (t) => {
  const [m] = frame([Buffer.from('x')], { ...base, facility: 23, severity: 0 });
  t.equal(m.pri, 184);
});

t.test('header fields are PRINTUSASCII and cut to the RFC maximum', async (t) => {
  const [m] = frame([Buffer.from('x')], { ...base, hostname: 'h o\tst' + 'x'.repeat(300), appName: 'ü' + 'a'.repeat(60) });
  t.equal(m.hostname!.length, 255);
  t.match(m.hostname, /^h_o_st/);
  t.equal(m.appName!.length, 48);
  const [n] = frame([Buffer.from('x')], { ...base, hostname: '', appName: '' });
  t.equal(n.hostname, null, 'empty hostname is the NILVALUE');
  t.equal(n.appName, null);
});

t.test('timestamp has microseconds, UTC', async (t) => {
  t.equal(timestampMicros(Date.UTC(2026, 10, 23, 10, 0, 0, 123) * 1000 + 456), '2026-11-23T10:00:00.123456Z');
  t.equal(timestampMicros(Date.UTC(2026, 0, 1) * 1000 + 7), '2026-01-01T00:00:00.000007Z');
});

t.test('MSG is the line unchanged, even bytes that are not UTF-8', async (t) => {
  const lines = [Buffer.from([0xff, 0xfe, 0x41, 0xc3]), Buffer.from('ümlaut "quoted" ] \\'), Buffer.from([0xef, 0xbb, 0xbf, 0x61])];
  const msgs = frame(lines);
  t.same(msgs[0].msg, lines[0]);
  t.same(msgs[1].msg, lines[1]);
  t.same(msgs[2].msg, lines[2], 'a BOM before valid UTF-8 stays');
});

t.test('a BOM before bytes that are not UTF-8 is removed, so the message stays valid', async (t) => {
  const [m] = frame([Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0x41])]);
  t.same(m.msg, Buffer.from([0xff, 0x41]));
});

t.test('structured data is escaped', async (t) => {
  const framer = new Rfc5424Framer(base);
  const out = new FrameWriter();
  const sd = sdElement('k8s@32473', [['user', 'a"b\\c]d'], ['bad name=x', 'ünï'], ['ctl', 'a\nb\u0000c']]);
  framer.append(out, Buffer.from('{}'), 2, { msgId: 'ResponseComplete', structuredData: sd, timestamp: '2026-01-02T03:04:05.678901Z' });
  const [m] = splitOctetCounted(out.take()).frames.map((f) => parseRfc5424(f));
  t.equal(m.msgId, 'ResponseComplete');
  t.equal(m.timestamp, '2026-01-02T03:04:05.678901Z');
  t.same(m.sd, [{ id: 'k8s@32473', params: [['user', 'a"b\\c]d'], ['bad_name_x', 'ünï'], ['ctl', 'a b c']] }], 'control characters become spaces');
});

t.test('a long line is truncated with a visible marker and stays within the limit', async (t) => {
  const big = Buffer.alloc(10_000, 'a');
  const [m] = frame([big]);
  t.match(m.msg.toString(), /\[truncated by auditfwd: 10000 bytes\]$/);
  const framer = new Rfc5424Framer(base);
  const out = new FrameWriter();
  framer.append(out, big, big.length);
  const [f] = splitOctetCounted(out.take()).frames;
  t.ok(f.length <= 4096, `message is ${f.length} bytes`);
  t.ok(f.length > 4000, 'and uses the room it has');
});

t.test('a line cut by the splitter (original longer than kept) is marked too', async (t) => {
  const kept = Buffer.alloc(100, 'b');
  const [m] = frame([kept], base, [500_000]);
  t.match(m.msg.toString(), /^b+ \[truncated by auditfwd: 500000 bytes\]$/);
});

t.test('truncation does not split a UTF-8 character', async (t) => {
  const line = Buffer.from('é'.repeat(5000));
  const [m] = frame([line]);
  const text = m.msg.toString('utf8');
  t.notOk(text.includes('\ufffd'), 'still valid UTF-8');
});

t.test('real audit lines survive byte for byte', async (t) => {
  const lines = readFileSync(k8sAuditPath('falcosecurity-falco.jsonl'))
    .toString('latin1')
    .split('\n')
    .filter(Boolean)
    .map((l) => Buffer.from(l, 'latin1'));
  const msgs = frame(lines, { ...base, maxMessageBytes: 65536 });
  t.equal(msgs.length, lines.length);
  msgs.forEach((m, i) => t.same(m.msg, lines[i]));
});

t.test('octet-counted frames convert to LF framing', async (t) => {
  const framer = new Rfc5424Framer(base);
  const out = new FrameWriter();
  framer.append(out, Buffer.from('one'));
  framer.append(out, Buffer.from('two'));
  const lf = octetToLf(out.take()).toString().split('\n');
  t.equal(lf.length, 3);
  t.equal(lf[2], '');
  t.equal(parseRfc5424(Buffer.from(lf[1])).msg.toString(), 'two');
});
