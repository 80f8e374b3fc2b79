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
