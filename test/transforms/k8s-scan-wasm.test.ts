import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { EventHeaderWriter } from '../../src/transforms/k8s-header.js';
import { EventScanner, fastScan } from '../../src/transforms/k8s-scan.js';
import { broken } from '../helpers/broken-lines.js';
import { k8sAuditLines } from '../helpers/fixtures.js';

// The scanner's fast path (k8s-scan.c in WebAssembly) against the JavaScript walk: it may leave any
// line to the walk, but a line it takes must be one JSON.parse takes, with the very fields the walk
// finds. The property tests of k8s-scan.test.ts run the scanner with both, against JSON.parse.

const REAL = k8sAuditLines();
const fast = fastScan();
const walk = new EventScanner(false);
/** Fields 1..18 of k8s-scan.ts; 0 is "other". */
const IDS = Array.from({ length: 18 }, (_, k) => k + 1);

/** What the fast path makes of `line`: undefined when it leaves it to the walk. */
function fastResult(line: Buffer) {
  fast.line.set(line, 0);
  if (fast.scan(line.length) !== 1) return undefined;
  const n = fast.code[0] >= 0 ? Number(line.toString('latin1', fast.code[0], fast.code[1])) : NaN;
  return picks(fast.from, fast.to, fast.esc, Number.isFinite(n) ? n : undefined);
}

function picks(from: Int32Array, to: Int32Array, esc: Uint8Array, code: number | undefined) {
  // A field's end and escapes mean something only where its start is a string's.
  return { fields: IDS.map((id) => (from[id] >= 0 ? [from[id], to[id], esc[id]] : [from[id]])), code: Object.is(code, -0) ? '-0' : code };
}

function isObject(line: Buffer): boolean {
  try {
    const v: unknown = JSON.parse(line.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** The fast path takes only JSON objects, finds what the walk finds, and leaves no plain object to the walk. */
function agrees(line: Buffer): boolean {
  const got = fastResult(line);
  const object = isObject(line);
  if (got === undefined) {
    // Left to the walk: fine for what it does not take (escaped keys, deep nesting, long lines).
    if (object && !line.includes(0x5c) && line.length <= fast.maxBytes && !/[[{]{40}/.test(line.toString('latin1'))) {
      throw new Error(`left a plain object to the walk: ${line.toString('latin1').slice(0, 300)}`);
    }
    return true;
  }
  if (!object) throw new Error(`took what JSON.parse rejects: ${JSON.stringify(line.toString('latin1').slice(0, 300))}`);
  walk.scan(line);
  const mine = JSON.stringify(got);
  const want = JSON.stringify(picks(walk.from, walk.to, walk.esc, walk.code));
  if (mine !== want) throw new Error(`fields differ on ${line.toString('latin1').slice(0, 300)}\nfast: ${mine}\nwalk: ${want}`);
  return true;
}

t.test('every real event is taken by the fast path, with the fields the walk finds', async (t) => {
  for (const l of REAL) {
    const line = Buffer.from(l);
    t.not(fastResult(line), undefined);
    t.ok(agrees(line));
  }
});

const key = fc.constantFrom('kind', 'apiVersion', 'auditID', 'stage', 'verb', 'user', 'username', 'objectRef', 'resource', 'namespace', 'name', 'responseStatus', 'code', 'sourceIPs', 'stageTimestamp', 'requestReceivedTimestamp', 'timestamp', 'x', 'kinds', 'Kind', '');
const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('"Event"', '"audit.k8s.io/v1"', '"a"', '""', '"\\"q\\u00e9"', '0', '-1.5e3', '200', '1e400', 'true', 'null', '[]', '{}'),
    fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)),
    fc.array(tie('v'), { maxLength: 3 }).map((xs) => '[' + xs.join(',') + ']'),
    fc.array(fc.tuple(key, tie('v')), { maxLength: 4 }).map((ms) => '{' + ms.map(([k, v]) => JSON.stringify(k) + ':' + v).join(',') + '}'),
  ),
})).v;
/** Objects with the keys the scanner picks, at the top and nested, duplicated, of every type. */
const objectLine = fc.array(fc.tuple(key, value, fc.constantFrom('', ' ', '\n', '\t')), { maxLength: 10 }).map((ms) => '{' + ms.map(([k, v, w]) => w + JSON.stringify(k) + w + ':' + w + v + w).join(',') + '}');

t.test('generated objects: the fast path takes each, with the fields the walk finds', async (t) => {
  fc.assert(fc.property(objectLine, (l) => agrees(Buffer.from(l))), { numRuns: 4000 });
  t.pass('4000 generated objects');
});

t.test('broken lines: the fast path takes none that JSON.parse rejects', async (t) => {
  const lines = fc.oneof(fc.constantFrom(...REAL), objectLine).chain(broken);
  fc.assert(fc.property(lines, (b) => agrees(b)), { numRuns: 6000 });
  t.pass('6000 broken lines');
});

t.test('JSON grammar corners, at every place the fast path reads values: taken only when JSON.parse takes them', async (t) => {
  const values = [
    '1', '-0', '0.5', '1e5', '1E+5', '1e-5', '-1.5e10', '01', '-01', '1.', '.5', '-', '+1', '1e', '1e+', '0x10', 'NaN', 'Infinity', '1.5.5', '2e3e4',
    'true', 'false', 'null', 'tru', 'nul', 'falsy', 'True', '"\\u00e9"', '"\\ud800"', '"\\u12"', '"\\u12G4"', '"\\x41"', '"\\/"', '"a\u0001"', '"\u007f"',
    '[]', '[ ]', '[1,]', '[,1]', '[1 2]', '[1}', '[{]}', '[[]', '[]]', '{}', '{ }', '{"a"}', '{"a":}', '{"a":1,}', '{,"a":1}', '{"a" 1}', '{1:1}', "{'a':1}",
    '{"a":1]', '{"a":[}]}', '{"a":{"b":[1,{"c":null}]}}', '[[[[[]]]]]', '"\t"', 'x', '', ',', ':', '}', ']',
  ];
  const places = [
    (v: string) => `{"kind":"Event","auditID":"a","x":${v}}`,
    (v: string) => `{"kind":"Event","auditID":"a","user":{"username":"u","x":${v}}}`,
    (v: string) => `{"kind":"Event","auditID":"a","user":{"username":${v}}}`,
    (v: string) => `{"kind":"Event","auditID":"a","sourceIPs":["a",${v}]}`,
    (v: string) => `{"kind":"Event","auditID":"a","sourceIPs":[${v}]}`,
    (v: string) => `{"kind":"Event","auditID":"a","responseStatus":{"code":${v}}}`,
    (v: string) => `{"kind":"Event","auditID":"a","objectRef":${v}}`,
    (v: string) => `{"kind":"Event","verb":${v},"auditID":"a"}`,
    (v: string) => `{"kind":"Event","auditID":"a","x":[${v}]}`,
    (v: string) => `{"kind":"Event","auditID":"a","x":{"y":${v}}}`,
  ];
  let taken = 0;
  for (const v of values) {
    for (const place of places) {
      const line = Buffer.from(place(v));
      t.ok(agrees(line), line.toString());
      if (fastResult(line) !== undefined) taken++;
    }
  }
  // About half the values are JSON: the fast path took those (agrees checks it took no other).
  t.ok(taken > 200, `${taken} taken`);
});

t.test('backslashes at every place of a 64-byte block: escapes and string ends as JSON.parse reads them', async (t) => {
  let n = 0;
  for (let pad = 0; pad < 70; pad++) {
    for (const tail of ['\\\\', '\\"', '\\\\\\"', '\\\\\\\\', '\\u0041', '\\', '\\\\\\', '\\x']) {
      const line = Buffer.from(`{"kind":"Event","auditID":"${'a'.repeat(pad)}${tail}","verb":"get"}`);
      if (agrees(line)) n++;
    }
  }
  t.equal(n, 70 * 8);
});

t.test('what the fast path leaves to the walk is decided by the walk', async (t) => {
  const scanner = new EventScanner();
  const event = (extra: string) => Buffer.from(`{"kind":"Event","auditID":"a1",${extra}"verb":"get"}`);
  // A key with escapes, nesting deeper than the fast path's stack, a line longer than it takes.
  const escapedKey = event('"v\\u0065rb":"list",');
  const deep = event(`"x":${'['.repeat(1500)}${']'.repeat(1500)},`);
  const long = event(`"x":"${'y'.repeat(fast.maxBytes)}",`);
  for (const line of [escapedKey, deep, long]) t.equal(fastResult(line), undefined);
  t.ok(scanner.scan(escapedKey));
  t.equal(scanner.fields().verb, 'get');
  t.ok(scanner.scan(deep));
  t.ok(scanner.scan(long));
  // Back to a short line after a long one: the scanner reads the fast path's copy again.
  t.ok(scanner.scan(Buffer.from(REAL[0])));
  walk.scan(Buffer.from(REAL[0]));
  t.same(scanner.fields(), walk.fields());
  t.notOk(scanner.scan(Buffer.from(`{"kind":"Event","auditID":"a1","x":${'['.repeat(1500)}${']'.repeat(1499)}}`)));
});

t.test('the fast path writes the header of every real event, the bytes the JavaScript writer writes', async (t) => {
  const framer = new Rfc5424Framer({ facility: 13, severity: 5, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes: 65536, structuredData: '[instance@47450 az="z1"]' });
  framer.beginBatch(Date.UTC(2026, 10, 23) * 1000);
  const withFast = new EventScanner();
  const writer = new EventHeaderWriter(framer, 'k8s-audit@47450');
  const reference = new EventHeaderWriter(framer, 'k8s-audit@47450');
  let written = 0;
  for (const l of REAL) {
    t.ok(withFast.scan(Buffer.from(l)) && walk.scan(Buffer.from(l)));
    const mine = Buffer.from(writer.write(withFast));
    if (withFast.fastLine!.writeHeader() > 0) written++;
    t.equal(mine.toString('latin1'), reference.write(walk).toString('latin1'));
  }
  t.equal(written, REAL.length, 'every real event');
  // SD elements of the configuration too long for the module's room for the fixed parts: the JavaScript writer.
  const longSd = new Rfc5424Framer({ facility: 13, severity: 5, hostname: 'master-0', appName: 'kube-apiserver', maxMessageBytes: 65536, structuredData: `[instance@47450 note="${'n'.repeat(5000)}"]` });
  longSd.beginBatch(Date.UTC(2026, 10, 23) * 1000);
  const long = new EventHeaderWriter(longSd, 'k8s-audit@47450');
  const longReference = new EventHeaderWriter(longSd, 'k8s-audit@47450');
  t.ok(withFast.scan(Buffer.from(REAL[0])) && walk.scan(Buffer.from(REAL[0])));
  t.equal(long.write(withFast).toString('latin1'), longReference.write(walk).toString('latin1'), 'a 5 KB SD element');
  t.equal(withFast.fastLine!.partsOf, writer, 'the module kept the parts it could hold');
  // Times with no fraction and with 1 to 9 digits of it (cut to 6), codes of 1 to 16 digits.
  for (let k = 0; k <= 9; k++) {
    const code = '1234567890123456'.slice(0, k + 7 > 16 ? 16 : k + 7).replace(/^0/, '');
    const line = Buffer.from(`{"kind":"Event","auditID":"a1","stageTimestamp":"2026-11-23T10:00:00${k ? '.' + '123456789'.slice(0, k) : ''}Z","responseStatus":{"code":${k === 0 ? 0 : code}}}`);
    t.ok(withFast.scan(line) && walk.scan(line));
    t.equal(withFast.fastLine!.writeHeader() > 0, k < 9, `code of ${k === 0 ? 1 : code.length} digits`);
    t.equal(writer.write(withFast).toString('latin1'), reference.write(walk).toString('latin1'), line.toString());
  }
  // Values to escape or decode, times in other forms, codes that are not plain: the JavaScript writer's.
  for (const extra of ['"user":{"username":"a]b"}', '"user":{"username":"\\u00e9"}', '"stageTimestamp":"2026-11-23T10:00:00+02:00"', '"responseStatus":{"code":2e2}', '"responseStatus":{"code":-0}', '"stage":"Response Complete"', '"verb":"' + 'v'.repeat(300) + '"', '"sourceIPs":["\u007f"]']) {
    const line = Buffer.from(`{"kind":"Event","auditID":"a1","stageTimestamp":"2026-11-23T10:00:00.123Z",${extra}}`);
    t.ok(withFast.scan(line) && walk.scan(line), extra);
    t.equal(withFast.fastLine!.writeHeader(), 0, `left to the JavaScript writer: ${extra}`);
    t.equal(writer.write(withFast).toString('latin1'), reference.write(walk).toString('latin1'));
  }
});

const built = spawnSync('clang-14', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('wasm-ld-14', ['--version'], { stdio: 'ignore' }).status === 0;
if (!built) console.error('SKIPPED: the check that k8s-scan-wasm.ts is k8s-scan.c compiled needs clang-14 and wasm-ld-14 (Debian packages clang-14 and lld-14)');
t.test('the committed module is what k8s-scan.c compiles to', { skip: !built && 'clang-14 or wasm-ld-14 is not installed (Debian packages clang-14 and lld-14)' }, async (t) => {
  const script = fileURLToPath(new URL('../../scripts/build-k8s-scan-wasm.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});
