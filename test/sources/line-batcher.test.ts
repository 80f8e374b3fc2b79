import t from 'tap';
import { LineBatcher } from '../../src/sources/line-batcher.js';
import type { Encoder } from '../../src/transforms/encoder.js';
import type { FrameWriter } from '../../src/framing/frame-writer.js';

/** Frames each line as itself, so a batch's bytes show which lines it holds. */
const plain = (tag: string, throwOn?: string): Encoder => ({
  beginBatch() {},
  encode(out: FrameWriter, line: Buffer) {
    out.ascii(tag);
    if (throwOn && line.toString() === throwOn) throw new Error('encoder failed');
    out.bytes(line);
    out.byte(0x0a);
    return 1;
  },
});

t.test('sources share one frame writer and each batch holds only its own lines', async (t) => {
  const a = new LineBatcher(plain('a:'), 1024);
  const b = new LineBatcher(plain('b:'), 1024);
  const a1 = a.process(Buffer.from('1\n2\npartial'));
  const b1 = b.process(Buffer.from('x\n'));
  const a2 = a.process(Buffer.from(' line\n3\n'));
  const b2 = b.flush();
  t.equal(a1.frames.toString(), 'a:1\na:2\n');
  t.equal(b1.frames.toString(), 'b:x\n');
  t.equal(a2.frames.toString(), 'a:partial line\na:3\n');
  t.equal(b2.frames.length, 0);
  t.equal(a1.frames.buffer, b1.frames.buffer, 'one slab for both');
  for (const c of [a1, b1, a2, b2]) c.release?.();
});

t.test('a batch left half-written by a throw does not leak into the next one', async (t) => {
  const bad = new LineBatcher(plain('bad:', 'boom'), 1024);
  const good = new LineBatcher(plain('ok:'), 1024);
  t.throws(() => bad.process(Buffer.from('fine\nboom\n')));
  const next = good.process(Buffer.from('y\n'));
  t.equal(next.frames.toString(), 'ok:y\n');
  next.release?.();
});

t.test('with the input offset given, each message carries where its line starts: across reads, CRLF, empty lines, flush', async (t) => {
  const b = new LineBatcher(plain(''), 1024);
  const c1 = b.process(Buffer.from('ab\n\ncd\r\npart'), 100);
  t.same(c1.offsets, [100, 104], 'empty line skipped, CR stripped, offsets of the bytes in the file');
  const c2 = b.process(Buffer.from('ial\nxy\n'), 114);
  t.same(c2.offsets, [110, 118], 'a line begun in the earlier read starts there');
  const c3 = b.process(Buffer.from('tail'), 121);
  t.same(c3.offsets, [], 'no complete line');
  const c4 = b.flush(125);
  t.same(c4.offsets, [121], 'the last line without LF');
  t.equal(b.process(Buffer.from('q\n')).offsets, undefined, 'no offset asked: none kept');
  const skip: Encoder = { beginBatch() {}, encode: (out, line) => (line.toString() === 'b' ? 0 : 1) };
  const f = new LineBatcher(skip, 1024).process(Buffer.from('a\nb\nc\n'), 0);
  t.same(f.offsets, [0, 4], 'a filtered line has no message and no offset');
  for (const c of [c1, c2, c3, c4, f]) c.release?.();
});

t.test('marks: each is a frame boundary, and the input consumed there ends the last line framed before it', async (t) => {
  const b = new LineBatcher(plain(''), 1024);
  // A partial line from the read before comes first; lines of every length, CRLF among them.
  const first = b.process(Buffer.from('abc'));
  t.equal(first.consumed, 0);
  const lines = Array.from({ length: 300 }, (_, i) => `${i}:${'y'.repeat((i * 37) % 90)}${i % 7 === 0 ? '\r' : ''}`);
  const input = Buffer.from('def\n' + lines.join('\n') + '\nunfinished');
  const c = b.process(input, 1000, 1024);
  t.ok(c.marks && c.marks.bytes.length >= 10, `${c.marks?.bytes.length} marks`);
  const { bytes, consumed } = c.marks!;
  for (let k = 0; k < bytes.length; k++) {
    t.ok(k === 0 || (bytes[k] > bytes[k - 1] && consumed[k] > consumed[k - 1]), 'increasing');
    t.ok(bytes[k] < c.frames.length && consumed[k] < c.consumed, 'inside the batch');
    t.equal(input[consumed[k] - 1], 0x0a, 'the input consumed ends with an LF');
    // The frames before the mark are exactly the lines of the input before that point.
    const framed = c.frames.subarray(0, bytes[k]).toString().split('\n').slice(0, -1);
    const read = ('abc' + input.subarray(0, consumed[k]).toString()).split('\n').slice(0, -1).map((l) => l.replace(/\r$/, ''));
    t.same(framed, read, `mark ${k}`);
  }
  t.equal(c.offsets?.[1], 1004, 'line offsets still count from the whole input');
  first.release?.();
  c.release?.();
  // Input no longer than a piece: no marks.
  t.equal(b.process(Buffer.from('z\n'), undefined, 1024).marks, undefined);
});
