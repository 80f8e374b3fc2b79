import t from 'tap';
import fc from 'fast-check';
import { FrameWriter } from '../../src/framing/frame-writer.js';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';
import { DEFAULT_SD_ID, fieldsOf, isAuditEvent, K8sAuditEncoder } from '../../src/transforms/k8s-audit.js';
import { EventScanner } from '../../src/transforms/k8s-scan.js';
import { EventFilter, parseSelector } from '../../src/transforms/selector.js';
import { broken } from '../helpers/broken-lines.js';
import { k8sAuditLines } from '../helpers/fixtures.js';

// The scanner against the JSON.parse path it replaces: on any line, the same decision (event or
// raw), the same fields, and the same framed bytes (header, SD, MSG), with and without selectors.

const RECEIVED = Date.UTC(2026, 10, 23, 10, 0, 0) * 1000;
const REAL = k8sAuditLines();

function parsed(line: Buffer): unknown {
  try {
    return JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
}

interface Setup {
  filter?: EventFilter;
  maxMessageBytes?: number;
}

/** Frames `line` with the scanner (encode) and with JSON.parse (encodeParsed), and both stats. */
function bothWays(line: Buffer, { filter, maxMessageBytes = 256 * 1024 }: Setup = {}) {
  const run = (viaParse: boolean) => {
    const stats = new Stats();
    const framer = new Rfc5424Framer({ facility: 13, severity: 5, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes, structuredData: '[instance@47450 az="z1"]' });
    const enc = new K8sAuditEncoder(framer, stats, { format: 'auto', sdId: DEFAULT_SD_ID, filter });
    const out = new FrameWriter(64 * 1024);
    enc.beginBatch();
    framer.beginBatch(RECEIVED);
    if (!viaParse) enc.encode(out, line, line.length);
    else {
      // The encoder's own cheap check comes first on both paths: a line must start with '{'.
      const v = /^[ \t]*\{/.test(line.toString('latin1')) ? parsed(line) : undefined;
      enc.encodeParsed(out, v !== null && typeof v === 'object' ? v : {}, line);
    }
    return { frames: out.take().toString('latin1'), events: stats.auditEvents, other: stats.nonEventLines };
  };
  return { scanned: run(false), reference: run(true) };
}

function same(line: Buffer, setup?: Setup): boolean {
  const { scanned, reference } = bothWays(line, setup);
  if (scanned.frames !== reference.frames || scanned.events !== reference.events || scanned.other !== reference.other) {
    throw new Error(`differ on ${JSON.stringify(line.toString('latin1').slice(0, 400))}\nscanned:   ${scanned.frames.slice(0, 600)}\nreference: ${reference.frames.slice(0, 600)}`);
  }
  return true;
}

const scanner = new EventScanner();
function sameFields(line: Buffer): boolean {
  const v = parsed(line);
  const isEvent = scanner.scan(line);
  if (isEvent !== isAuditEvent(v)) throw new Error(`event ${isEvent} vs ${isAuditEvent(v)}: ${line.toString('latin1').slice(0, 300)}`);
  if (isEvent) {
    const a = JSON.stringify(scanner.fields());
    const b = JSON.stringify(fieldsOf(v as never));
    if (a !== b) throw new Error(`fields ${a} vs ${b}`);
  }
  return true;
}

// Strings with what makes decoding and escaping hard: quotes, backslashes, ']', DEL, controls,
// non-ASCII, astral characters and lone surrogates (JSON.stringify writes those as \u escapes).
const tricky = fc.constantFrom('a', 'Z', '0', ' ', '"', '\\', ']', '[', '=', '\u007f', '\u0000', '\n', '\t', 'é', '日', '😀', '\ud800', '\udfff', '/', ':', '-', '.', 'T', 'Z');
const text = fc.oneof(fc.string({ unit: tricky, maxLength: 12 }), fc.string({ maxLength: 10 }), fc.constantFrom('', 'get', 'ResponseComplete', 'system:admin'));
const longText = fc.integer({ min: 250, max: 300 }).map((n) => 'é'.repeat(n / 2) + 'x'.repeat(n / 2));
const timestamp = fc.oneof(
  fc.constantFrom(
    '2024-01-02T03:04:05Z', '2024-01-02T03:04:05.123456Z', '2024-01-02T03:04:05.123456789Z', '2024-01-02t03:04:05z',
    '2024-01-02T03:04:05.5+02:00', '2016-12-31T23:59:60Z', '2024-13-01T00:00:00Z', '2024-01-02T24:00:00Z', '2024-01-02T03:04:05.Z',
    '2024-01-02 03:04:05Z', '0000-01-01T00:00:00Z', '2024-00-10T00:00:00Z', '2024-01-32T00:00:00Z', '2024-01-02T03:60:05Z',
  ),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  text,
);
const anyJson = fc.jsonValue({ maxDepth: 3 });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });
/** Objects that carry the same keys as an event, to be nested where the scanner must not look. */
const lookAlike = fc.record(
  { kind: fc.constantFrom('Event', 'Pod'), auditID: text, stage: text, verb: text, user: fc.record({ username: text }), stageTimestamp: timestamp, objectRef: fc.record({ name: text }), responseStatus: fc.record({ code: fc.integer() }), sourceIPs: fc.array(text) },
  { requiredKeys: [] },
);

const event = fc.record(
  {
    kind: fc.oneof({ weight: 8, arbitrary: fc.constant('Event') }, { weight: 1, arbitrary: anyJson }),
    apiVersion: maybe(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('audit.k8s.io/v1', 'audit.k8s.io/v1beta1') }, { weight: 1, arbitrary: fc.oneof(text, anyJson) })),
    auditID: fc.oneof({ weight: 8, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.oneof(text, anyJson) }),
    stage: maybe(fc.oneof(text, anyJson)),
    verb: maybe(fc.oneof(text, longText)),
    user: maybe(fc.oneof({ weight: 5, arbitrary: fc.record({ username: fc.oneof(text, longText, anyJson), groups: fc.array(text) }, { requiredKeys: [] }) }, { weight: 1, arbitrary: anyJson })),
    objectRef: maybe(fc.oneof({ weight: 5, arbitrary: fc.record({ resource: text, namespace: fc.oneof(text, anyJson), name: text, apiGroup: text }, { requiredKeys: [] }) }, { weight: 1, arbitrary: anyJson })),
    responseStatus: maybe(fc.oneof({ weight: 5, arbitrary: fc.record({ code: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.double(), fc.integer(), anyJson), metadata: anyJson }, { requiredKeys: [] }) }, { weight: 1, arbitrary: anyJson })),
    sourceIPs: maybe(fc.oneof(fc.array(fc.oneof(text, anyJson), { maxLength: 3 }), anyJson)),
    stageTimestamp: maybe(fc.oneof(timestamp, anyJson)),
    requestReceivedTimestamp: maybe(timestamp),
    timestamp: maybe(timestamp),
    requestObject: maybe(fc.oneof(lookAlike, anyJson)),
    responseObject: maybe(fc.record({ items: fc.array(lookAlike, { maxLength: 3 }) })),
    annotations: maybe(fc.dictionary(fc.constantFrom('authorization.k8s.io/decision', 'auditID', 'stage', 'x'), text)),
  },
  { requiredKeys: [] },
);

/**
 * JSON text of `v` written the ways a writer may: whitespace between tokens, characters of keys and
 * strings as \u escapes (upper or lower case), '/' as '\/', and a key now and then twice.
 */
function serialise(v: unknown, seed: number): string {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
  const ws = () => (rnd() < 0.1 ? [' ', '\t', '\n', '\r', '  '][Math.floor(rnd() * 5)] : '');
  const str = (x: string) => {
    let out = '"';
    for (const ch of JSON.stringify(x).slice(1, -1).match(/\\u[0-9a-f]{4}|\\.|[^]/gu) ?? []) {
      if (ch.length === 1 && rnd() < 0.05) {
        const hex = ch.charCodeAt(0).toString(16).padStart(4, '0');
        out += '\\u' + (rnd() < 0.5 ? hex : hex.toUpperCase());
      } else if (ch === '/' && rnd() < 0.5) out += '\\/';
      else out += ch;
    }
    return out + '"';
  };
  const val = (x: unknown): string => {
    if (x === null || typeof x !== 'object') return typeof x === 'string' ? str(x) : JSON.stringify(x) ?? 'null';
    if (Array.isArray(x)) return '[' + ws() + x.map((e) => val(e) + ws()).join(',' + ws()) + ']';
    const members = Object.entries(x).map(([k, e]) => ws() + str(k) + ws() + ':' + ws() + val(e) + ws());
    // A duplicate key: JSON.parse keeps the last one.
    if (members.length > 0 && rnd() < 0.1) members.unshift(ws() + str(Object.keys(x)[0]) + ':' + (rnd() < 0.5 ? '"first"' : '{"username":"first"}'));
    return '{' + members.join(',') + '}';
  };
  return ws() + val(v) + ws();
}

const generated = fc.tuple(event, fc.nat()).map(([e, seed]) => serialise(e, seed));

t.test('the 88 real events: same fields and the same frames as JSON.parse', async (t) => {
  for (const l of REAL) {
    t.ok(sameFields(Buffer.from(l)));
    t.ok(same(Buffer.from(l)));
  }
});

t.test('generated events (escapes, \\u, non-ASCII, look-alike nested keys, duplicates): same as JSON.parse', async (t) => {
  fc.assert(fc.property(generated, (l) => sameFields(Buffer.from(l)) && same(Buffer.from(l))), { numRuns: 3000 });
  t.pass('3000 generated events');
});

t.test('broken real and generated lines: rejected exactly when JSON.parse rejects them', async (t) => {
  const lines = fc.oneof(fc.constantFrom(...REAL), generated).chain(broken);
  fc.assert(fc.property(lines, (b) => sameFields(b) && same(b)), { numRuns: 5000 });
  t.pass('5000 broken lines');
});

t.test('JSON grammar corners decide like JSON.parse', async (t) => {
  const base = '{"kind":"Event","auditID":"a","x":';
  const values = [
    '1', '-0', '0.5', '1e5', '1E+5', '1e-5', '-1.5e10', '01', '1.', '.5', '-', '+1', '1e', '1e+', '0x10', 'NaN', 'Infinity',
    'true', 'false', 'null', 'tru', 'nul', 'True', '"\\u00e9"', '"\\uD83D\\uDE00"', '"\\ud800"', '"\\u12"', '"\\u12G4"', '"\\x41"', '"\\\'"',
    '"\\/"', '[]', '[1,]', '[,1]', '[1 2]', '{}', '{"a"}', '{"a":}', '{"a":1,}', '{,"a":1}', '{"a" 1}', '{1:1}', "{'a':1}", '[[[[[]]]]]',
    '"\u0001"', '"\u007f"', '"\t"', '"a\nb"', '[' .repeat(5000) + ']'.repeat(5000), '[' .repeat(5000) + ']'.repeat(4999),
  ];
  for (const v of values) {
    for (const line of [base + v + '}', base + v + ' }', ' \t' + base + v + '}\r\n ', base + v + '}x', base + v + '}}']) {
      t.ok(sameFields(Buffer.from(line)) && same(Buffer.from(line)), line.slice(0, 80));
    }
  }
  for (const line of ['{"kind":"Event","auditID":"a"}', '{"kind":"Event","auditID":""}', '{"k\\u0069nd":"Ev\\u0065nt","\\u0061uditID":"a"}', '{"kind":"Event","auditID":"a","kind":"Pod"}', '{"kind":"Pod","auditID":"a","kind":"Event"}', '{"kind":"Event","auditID":"a","apiVersion":null}', '{"kind":"Event","auditID":"a","apiVersion":"audit.k8s.io/"}', '{"kind":"Event","auditID":"a","user":{"username":"x"},"user":"y"}', '{"kind":"Event","auditID":"a","sourceIPs":[1,"b"]}', '{"kind":"Event","auditID":"a","sourceIPs":["", "b"]}', '{"kind":"Event","auditID":"a","responseStatus":{"code":1e400}}', '{"kind":"Event","auditID":"a","responseStatus":{"code":-0}}', '{"kind":"Event","auditID":"a","responseStatus":{"code":12345678901234567890}}', '{"kind":"Event","auditID":"a","__proto__":{"verb":"x"}}', '{"kind":"Event","auditID":"a","user":{"__proto__":{"username":"x"}}}', '[1]', '"Event"', '{}', '']) {
    t.ok(sameFields(Buffer.from(line)) && same(Buffer.from(line)), line);
  }
});

t.test('SD values with a byte to escape or decode at every place in a four-byte word (the header copies words)', async (t) => {
  let n = 0;
  for (const odd of [']', '\u007f', 'é', '"', '\\', '日']) {
    for (let at = 0; at < 9; at++) {
      const v = 'abcdefghi'.slice(0, at) + odd + 'jklmnopqr'.slice(at);
      for (const line of [JSON.stringify({ kind: 'Event', auditID: v, user: { username: v }, objectRef: { name: v.slice(1) }, stageTimestamp: '2024-01-02T03:04:05.1234567' + v.slice(0, 1) + 'Z' })]) {
        if (same(Buffer.from(line)) && sameFields(Buffer.from(line))) n++;
      }
    }
  }
  t.equal(n, 54);
});

t.test('200 KB RequestResponse events, whole, cut and broken: same as JSON.parse, also when truncated to --max-message-bytes', async (t) => {
  const e = JSON.parse(REAL[3]) as Record<string, unknown>;
  const items = Array.from({ length: 1500 }, (_, i) => ({ metadata: { name: `pod-${i}-é"\\`, auditID: 'nested', kind: 'Event' }, spec: { containers: [{ image: 'x/y:1', args: ['--a=1', '\u00e9\u65e5\ud83d\ude00'] }] } }));
  const big = JSON.stringify({ ...e, responseObject: { kind: 'PodList', items } });
  t.ok(big.length > 200_000, `${big.length} bytes`);
  for (const line of [big, serialise(JSON.parse(big), 7), big.slice(0, 150_000), big.replace('"pod-700-', '"pod-700-\u0001'), big.replace('"pod-900-', '"pod-900-\\q')]) {
    t.ok(sameFields(Buffer.from(line)) && same(Buffer.from(line)) && same(Buffer.from(line), { maxMessageBytes: 4096 }));
  }
});

t.test('selectors read only the keys they name, with the same result as on the parsed event', async (t) => {
  const selectors = [
    'verb in (create,update)', 'user.username=minikube-user', 'objectRef.resource=clusterroles', '!objectRef.namespace',
    'responseStatus.code>200', 'annotations.authorization.k8s.io/decision=allow', 'requestObject.kind=ClusterRole', 'kind', 'stage!=ResponseComplete',
  ];
  const filter = fc.tuple(fc.subarray(selectors, { minLength: 1, maxLength: 2 }), fc.subarray(selectors, { maxLength: 1 }));
  const lines = fc.oneof(fc.constantFrom(...REAL), generated);
  fc.assert(
    fc.property(filter, lines, ([sel, exc], l) => same(Buffer.from(l), { filter: new EventFilter(sel.map(parseSelector), exc.map(parseSelector)) })),
    { numRuns: 1500 },
  );
  t.pass('1500 lines under random selectors');
});

t.test('one encoder for many events (header parts it keeps between events): same bytes as JSON.parse', async (t) => {
  // Stages repeat as in a real log, with more distinct ones than the encoder keeps, and odd ones.
  const stage = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic') },
    { weight: 2, arbitrary: fc.oneof(text, fc.constantFrom('Response', 'ResponseCompleted', 'RequestReceived\u00e9', 'Ресурс'), fc.constantFrom('ResponseCompleteResponseComplete', 'ResponseCompleteResponseComplete:', 'x'.repeat(40)), anyJson) },
  );
  const line = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...REAL), stage).map(([l, s]) => JSON.stringify({ ...(JSON.parse(l) as object), stage: s })) },
    { weight: 1, arbitrary: generated },
  );
  const encoders = (viaParse: boolean) => {
    const framer = new Rfc5424Framer({ facility: 13, severity: 5, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes: 256 * 1024 });
    const enc = new K8sAuditEncoder(framer, new Stats(), { format: 'auto', sdId: DEFAULT_SD_ID });
    return (lines: string[]) => {
      const out = new FrameWriter(64 * 1024);
      enc.beginBatch();
      framer.beginBatch(RECEIVED);
      for (const l of lines) {
        const b = Buffer.from(l);
        if (!viaParse) enc.encode(out, b, b.length);
        else {
          const v = /^[ \t]*\{/.test(l) ? parsed(b) : undefined;
          enc.encodeParsed(out, v !== null && typeof v === 'object' ? v : {}, b);
        }
      }
      return out.take().toString('latin1');
    };
  };
  const scanned = encoders(false);
  const reference = encoders(true);
  fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 30 }), (lines) => scanned(lines) === reference(lines)), { numRuns: 300 });
  t.pass('300 runs of up to 30 events through the same encoders');
});
