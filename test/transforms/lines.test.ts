import t from 'tap';
import fc from 'fast-check';
import { LineSplitter } from '../../src/transforms/lines.js';

function split(chunks: Buffer[], max = 1 << 20) {
  const s = new LineSplitter(max);
  const lines: Array<[string, number]> = [];
  let consumed = 0;
  let pos = 0;
  for (const c of chunks) {
    const n = s.push(c, (l, orig) => lines.push([l.toString('latin1'), orig]));
    if (n > 0) consumed = pos + n;
    pos += c.length;
  }
  return { lines, consumed, pending: s.pending, splitter: s };
}

t.test('LF ends a line, CR is stripped, empty lines skipped, partial line waits', async (t) => {
  const r = split([Buffer.from('a\r\nb\n\n\r\nc')]);
  t.same(r.lines, [['a', 1], ['b', 1]]);
  t.equal(r.consumed, 8, 'consumed through the last LF');
  t.equal(r.pending, 1);
});

t.test('a line split across chunks is joined', async (t) => {
  const r = split([Buffer.from('hel'), Buffer.from('lo wor'), Buffer.from('ld\nx')]);
  t.same(r.lines, [['hello world', 11]]);
  t.equal(r.consumed, 12);
});

t.test('a line over the limit keeps its first bytes and reports its length', async (t) => {
  const r = split([Buffer.from('x'.repeat(10)), Buffer.from('y'.repeat(10) + '\nok\n')], 5);
  t.same(r.lines, [['xxxxx', 20], ['ok', 2]]);
  const r2 = split([Buffer.from('z'.repeat(9) + '\n')], 5);
  t.same(r2.lines, [['zzzzz', 9]]);
});

t.test('memory for a partial line is bounded', async (t) => {
  const s = new LineSplitter(100);
  for (let i = 0; i < 1000; i++) s.push(Buffer.alloc(1000, 'q'), () => t.fail('no line yet'));
  t.equal(s.pending, 1_000_000, 'all bytes counted');
  const { carried, carry } = s as unknown as { carried: number; carry: Buffer };
  t.equal(carried, 100, 'only the limit is held');
  t.ok(carry.length <= 100, `the carry is ${carry.length} bytes, not more than the limit`);
});

t.test('a line cut by every chunk is carried in one buffer, not a new one per chunk', async (t) => {
  const s = new LineSplitter(1 << 20);
  const carries = new Set<Buffer>();
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) {
    // Each chunk ends a line begun in the one before and begins another (as a 512 KiB read does).
    s.push(Buffer.from(`end-${i}\nstart-${i + 1}-`), (l) => lines.push(l.toString()));
    carries.add((s as unknown as { carry: Buffer }).carry);
  }
  t.equal(lines.length, 200);
  t.equal(lines[5], 'start-5-end-5', 'a carried line comes out whole');
  t.equal(carries.size, 1, 'one carry buffer for all 200 chunks');
});

t.test('what a long line grew is given back once it is out', async (t) => {
  const s = new LineSplitter(1 << 20);
  const long = Buffer.alloc(300_000, 'x');
  let got = 0;
  for (let off = 0; off < long.length; off += 1000) s.push(long.subarray(off, off + 1000), () => t.fail('no line yet'));
  t.ok((s as unknown as { carry: Buffer }).carry.length >= 300_000, 'the carry grew to hold the line');
  s.push(Buffer.from('\n'), (l) => (got = l.length));
  t.equal(got, 300_000, 'the long line came out whole');
  t.ok((s as unknown as { carry: Buffer }).carry.length <= 64 * 1024, 'and its carry was dropped');
});

t.test('flush emits a last line without LF', async (t) => {
  const r = split([Buffer.from('a\nlast')]);
  const out: string[] = [];
  r.splitter.flush((l) => out.push(l.toString()));
  t.same(out, ['last']);
});

t.test('any chunking gives the same lines as splitting the whole input (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', 'b', '\n', '\r', 'é', '\r\n'), { maxLength: 200 }),
      fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 50 }),
      (parts, cuts) => {
        const input = Buffer.from(parts.join(''));
        const chunks: Buffer[] = [];
        let i = 0;
        let k = 0;
        while (i < input.length) {
          const n = cuts[k++ % cuts.length];
          chunks.push(input.subarray(i, i + n));
          i += n;
        }
        const expected = input
          .toString('latin1')
          .split('\n')
          .slice(0, -1)
          .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
          .filter((l) => l.length > 0);
        const got = split(chunks).lines.map(([l]) => l);
        return got.length === expected.length && got.every((l, j) => l === expected[j]);
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random chunkings agree');
});
